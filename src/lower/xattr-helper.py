#!/usr/bin/env python3
# Extended attributes for ecryptfs-ts. Node has no xattr syscalls and native addons need a build
# step, so one long-lived python3 process serves them over stdin/stdout, one JSON object a line:
# {"id":N,"op":"get|set|list|remove","path":b64,"name":str,"value":b64,"follow":bool,"flags":int}
# -> {"id":N,"value":b64} | {"id":N,"names":[...]} | {"id":N} | {"id":N,"errno":E}
import base64, json, os, sys

def serve(req):
    path = base64.b64decode(req["path"])
    follow = bool(req.get("follow", True))
    op = req["op"]
    if op == "get":
        return {"value": base64.b64encode(os.getxattr(path, req["name"], follow_symlinks=follow)).decode()}
    if op == "set":
        os.setxattr(path, req["name"], base64.b64decode(req["value"]), req.get("flags", 0), follow_symlinks=follow)
        return {}
    if op == "list":
        return {"names": os.listxattr(path, follow_symlinks=follow)}
    if op == "remove":
        os.removexattr(path, req["name"], follow_symlinks=follow)
        return {}
    return {"errno": 22}

for line in sys.stdin:
    req = json.loads(line)
    try:
        out = serve(req)
    except OSError as e:
        out = {"errno": e.errno or 5}
    out["id"] = req["id"]
    sys.stdout.write(json.dumps(out) + "\n")
    sys.stdout.flush()
