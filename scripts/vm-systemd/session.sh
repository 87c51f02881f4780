#!/bin/bash
# Runs in the VM's root login shell on the serial console (a session scope): installs the
# .deb, then the checks; prints PASS/FAIL lines and VMTEST-DONE, then powers off.
cd /payload
exec 2>&1
echo "INFO login after $(cut -d" " -f1 /proc/uptime) s of uptime"
echo "INFO systemd $(systemctl --version | head -n1 | cut -d' ' -f2), kernel $(uname -r)"
echo "INFO login shell cgroup: $(cut -d: -f3 /proc/self/cgroup)"
if dpkg -i judgebox.deb >/tmp/dpkg.log 2>&1; then echo "PASS install_deb"; else
  echo "FAIL install_deb: dpkg -i failed"; sed 's/^/    | /' /tmp/dpkg.log | tail -n 5
fi
case $(cut -d: -f3 /proc/self/cgroup) in
  */session-*.scope) echo "PASS in_session_scope" ;;
  *) echo "FAIL in_session_scope: $(cut -d: -f3 /proc/self/cgroup)" ;;
esac

# (a) doctor from the session: obtains a delegated scope itself and exits 0.
judgebox doctor >/tmp/doctor.out 2>&1
rc=$?
if [ $rc = 0 ] && grep -q 'transient scope judgebox-' /tmp/doctor.out; then echo "PASS doctor_ok"; else
  echo "FAIL doctor_ok: exit $rc"
fi
sed 's/^/    | /' /tmp/doctor.out

# The warm sandbox (judge's default) and a fresh one per test agree under nsdelegate.
for mode in "" --no-reuse; do
  w=$(judgebox judge --json $mode --lang python3 /payload/programs/ok.py --tests /payload/aplusb/tests 2>/dev/null | jq -r '.verdict // empty' 2>/dev/null)
  if [ "$w" = accepted ]; then echo "PASS session.aplusb${mode:+_no_reuse}"; else
    echo "FAIL session.aplusb${mode:+_no_reuse}: verdict ${w:-none}, want accepted"
  fi
done

# (b) from the session scope.
bash /payload/cases.sh session full

# (c) from a service without Delegate= and from the shipped unit (Delegate=yes).
systemd-run --quiet --wait --pipe --unit=jbtest-plain.service -p Delegate=no \
  bash /payload/cases.sh service short </dev/null
sed -e 's|^ExecStart=.*|ExecStart=/bin/bash /payload/cases.sh unit short|' \
  -e 's|^Type=.*|Type=oneshot|' -e 's|^Restart=.*|Restart=no|' \
  -e 's|^\[Service\]|[Service]\nStandardOutput=file:/tmp/unit.out\nStandardError=file:/tmp/unit.out\nTimeoutStartSec=600|' \
  /usr/share/doc/judgebox/examples/judgebox.service >/etc/systemd/system/judgebox.service
systemctl daemon-reload
systemctl start judgebox.service
cat /tmp/unit.out
if grep -q 'transient scope' /tmp/unit.out; then echo "FAIL unit.uses_own_delegation: re-executed in a scope under Delegate=yes"; else echo "PASS unit.uses_own_delegation"; fi

# (d) daemon-reload while a run is in progress changes nothing.
printf '1 2\n' >/tmp/in; printf '3\n' >/tmp/out
judgebox judge --json --no-reuse --lang python3 /payload/programs/sleep.py --stdin /tmp/in --expected /tmp/out \
  --wall-time 60 >/tmp/reload.json 2>/tmp/reload.err &
jb=$!
sleep 4
scope=$(systemctl list-units --plain --no-legend 'judgebox-*.scope' | awk '{print $1}' | head -n1)
systemctl daemon-reload
systemctl restart systemd-journald.service
wait $jb
rc=$?
v=$(jq -r '[.verdict, .tests[0].enforcement.memory] | join(" ")' /tmp/reload.json 2>/dev/null)
if [ "$v" = "accepted cgroup2" ] && [ -n "$scope" ]; then echo "PASS daemon_reload_during_run ($scope)"; else
  echo "FAIL daemon_reload_during_run: exit $rc, '$v', scope '$scope'"; sed 's/^/    | /' /tmp/reload.err | head
fi
left=$(find /sys/fs/cgroup -type d \( -name 'judgebox-*.scope' -o -name 'run-[0-9]*-[0-9]*-[0-9]*' \) 2>/dev/null)
sleep 1
left=$(find /sys/fs/cgroup -type d \( -name 'judgebox-*.scope' -o -name 'run-[0-9]*-[0-9]*-[0-9]*' \) 2>/dev/null)
if [ -z "$left" ]; then echo "PASS final.no_cgroup_left"; else echo "FAIL final.no_cgroup_left: $left"; fi
echo "VMTEST-DONE"
systemctl poweroff
