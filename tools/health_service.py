#!/usr/bin/env python
"""A small HTTP health service for the demo and the tests.

GET /health          {"status": "healthy", "components": {"db": {"status": "up"}}}
GET /status/<code>   answers with that status code
GET /delay/<ms>      answers after that many milliseconds
GET /json?<k>=<v>... answers {"k": "v", ...} (numbers stay numbers)
GET /redirect?to=<path> answers 302 with Location <path>
POST /echo           answers {"method": "POST", "body": <the body>, "headers": {...}}
Anything else is 404.
"""

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


class Handler(BaseHTTPRequestHandler):
    server_version = 'runbook-health/1'

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def _send(self, code, document):
        body = json.dumps(document).encode()
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        parts = url.path.strip('/').split('/')
        if url.path == '/health':
            self._send(200, {'status': 'healthy', 'components': {'db': {'status': 'up'}}})
        elif parts[0] == 'status' and len(parts) == 2 and parts[1].isdigit():
            self._send(int(parts[1]), {'status': int(parts[1])})
        elif parts[0] == 'delay' and len(parts) == 2 and parts[1].isdigit():
            time.sleep(int(parts[1]) / 1000.0)
            self._send(200, {'status': 'healthy', 'delay_ms': int(parts[1])})
        elif url.path == '/redirect':
            target = dict(parse_qsl(url.query)).get('to', '/health')
            self.send_response(302)
            self.send_header('Location', target)
            self.send_header('Content-Length', '0')
            self.end_headers()
        elif url.path == '/json':
            document = {}
            for key, value in parse_qsl(url.query):
                try:
                    document[key] = json.loads(value)
                except ValueError:
                    document[key] = value
            self._send(200, document)
        else:
            self._send(404, {'error': 'not found'})

    def do_POST(self):  # noqa: N802 - http.server's name
        length = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(length).decode('utf-8', 'replace')
        if urlsplit(self.path).path == '/echo':
            self._send(200, {'method': 'POST', 'body': body,
                             'headers': {'x-probe': self.headers.get('X-Probe')}})
        else:
            self._send(404, {'error': 'not found'})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops concurrent connects (a retry costs a second).
    request_queue_size = 128


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--bind', default='127.0.0.1')
    args = parser.parse_args()
    Server((args.bind, args.port), Handler).serve_forever()


if __name__ == '__main__':
    main()
