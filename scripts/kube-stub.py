#!/usr/bin/env python3
"""A stand-in Kubernetes API server for measuring the scheduler process on this machine (no real
API server can run here). It answers the calls the scheduler makes each tick: the Lease, the kill
switch, result ConfigMaps and the Job list; Jobs created are kept in memory. Usage:
    kube-stub.py PORT
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

objects = {}


def status(code, reason):
    return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self):
        path = self.path.split("?")[0]
        if path in objects:
            return self.reply(200, objects[path])
        if path.endswith("/jobs") or path.endswith("/configmaps") or path.endswith("/pods"):
            items = [v for k, v in objects.items() if k.startswith(path + "/")]
            return self.reply(200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items})
        self.reply(*status(404, "NotFound"))

    def do_POST(self):
        body = self.body()
        path = self.path.split("?")[0] + "/" + body.get("metadata", {}).get("name", "")
        if path in objects:
            return self.reply(*status(409, "AlreadyExists"))
        body.setdefault("metadata", {})["resourceVersion"] = "1"
        objects[path] = body
        self.reply(201, body)

    def do_PUT(self):
        body = self.body()
        path = self.path.split("?")[0]
        current = objects.get(path)
        if current and current["metadata"].get("resourceVersion") != body["metadata"].get("resourceVersion"):
            return self.reply(*status(409, "Conflict"))
        body["metadata"]["resourceVersion"] = str(int(body["metadata"].get("resourceVersion") or 0) + 1)
        objects[path] = body
        self.reply(200, body)


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
