# Test oracle for f2b-actions (MIT OR Apache-2.0, part of f2b).
#
# Runs under /usr/bin/python3 with the Debian fail2ban package installed. It
# takes the action stream from `fail2ban-client -c CONFDIR -d`, replays a fixed
# scenario through fail2ban's own CommandAction with command execution
# replaced by recording, and prints JSON: the properties of every action and
# the exact commands (script or [script, args...]) fail2ban would run.
import ast
import json
import socket
import subprocess
import sys

from fail2ban.server.action import CommandAction
from fail2ban.server.actions import Actions
from fail2ban.server.ticket import BanTicket
from fail2ban.server.mytime import MyTime
from fail2ban.server.ipdns import DNSUtils

confdir = sys.argv[1]
scenario = json.loads(sys.argv[2])

out = subprocess.run(["/usr/bin/fail2ban-client", "-c", confdir, "-d"],
	capture_output=True, text=True, check=True).stdout
stream = [ast.literal_eval(l) for l in out.splitlines() if l.startswith("[")]

MyTime.setTime(scenario["now"])
recorded = []
def record(realCmd, timeout=60, **kwargs):
	recorded.append(realCmd)
	if scenario.get("execute"):
		from fail2ban.server.utils import Utils
		return Utils.executeCmd(realCmd, timeout, shell=True, output=False)
	return True
CommandAction.executeCmd = staticmethod(record)

class FailManager:
	def size(self): return 0
	def getFailTotal(self): return 0
class Filter:
	failManager = FailManager()
class Jail:
	def __init__(self, name):
		self.name = name
		self.database = None
		self.filter = Filter()
		self.actions = Actions(self)
	def __str__(self): return self.name

def mkticket(t):
	bt = BanTicket(t["id"], t["time"], t.get("matches", []))
	bt.setAttempt(t.get("failures", 0))
	bt.setBanCount(t.get("bancount", 0))
	if t.get("bantime") is not None: bt.setBanTime(t["bantime"])
	for k, v in t.get("data", {}).items(): bt.setData(k, v)
	bt.restored = t.get("restored", False)
	return bt

jails = {}
result = {"fq": DNSUtils.getHostname(fqdn=True), "sh": DNSUtils.getHostname(fqdn=False),
	"ipv6": bool(DNSUtils.IPv6IsAllowed()), "actions": []}
acts = []
for cmd in stream:
	if cmd[0] == "set" and len(cmd) == 4 and cmd[2] == "addaction":
		j = jails.setdefault(cmd[1], Jail(cmd[1]))
		a = CommandAction(j, cmd[3])
		acts.append((j, a, []))
	elif cmd[0] == "multi-set" and cmd[2] == "action":
		for j, a, props in acts:
			if j.name == cmd[1] and a._name == cmd[3]:
				for k, v in cmd[4]:
					setattr(a, k, v)
					props.append([k, str(v)])

for j, a, props in acts:
	recorded.clear()
	steps = []
	for cmd in scenario.get("setup", []):
		subprocess.run(cmd, shell=True, check=True)
	for step in scenario["steps"]:
		op = step["op"]
		before = len(recorded)
		try:
			if op == "sh":
				subprocess.run(step["cmd"], shell=True, check=True)
			elif op in ("ban", "reban", "unban", "prolong"):
				info = j.actions._getActionInfo(mkticket(step["ticket"]))
				getattr(a, op)(info)
			elif op == "check":
				ok = a.consistencyCheck()
			else:
				getattr(a, op)()
			ok = True if op != "check" else bool(ok)
		except Exception as e:
			ok = False
		steps.append({"op": op, "ok": ok,
			"cmds": [c if isinstance(c, str) else list(c) for c in recorded[before:]]})
	entry = {"jail": j.name, "name": a._name, "props": props, "steps": steps}
	outf = dict(props).get("out")
	if outf:
		try:
			entry["out"] = open(outf).read()
		except OSError:
			entry["out"] = ""
	result["actions"].append(entry)

print(json.dumps(result))
