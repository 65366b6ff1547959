#!/bin/sh
# A local stand-in for ssh in the reference ssh targets: drops the ssh options
# and the host, runs the remote command line here (no handshake, no crypto),
# writes the server side's CPU time (the shell's `times`: own, then reaped
# children) to the file $FAKESSH_STATS.<pid> when FAKESSH_STATS is set.
while [ $# -gt 0 ]; do
  case "$1" in
    -p|-o|-l|-i|-F|-S|-b|-c|-m|-J) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
shift  # the host
sh -c "$*"
rc=$?
if [ -n "${FAKESSH_STATS:-}" ]; then
  times > "$FAKESSH_STATS.$$"
fi
exit $rc
