// bench/net/http_node.js - the Node.js http peer of the http benchmarks.
//
//   node http_node.js PORT     listen on 127.0.0.1:PORT until killed
//
// One process, the http module: GET / answers 200 "hello, world\n" with
// Content-Length (keep-alive is the default); any other path answers 404.
'use strict';
const http = require('http');

const port = Number(process.argv[2]);
if (!port) {
  console.error('usage: node http_node.js PORT');
  process.exit(2);
}
const body = Buffer.from('hello, world\n');
const server = http.createServer((req, res) => {
  if (req.url !== '/') {
    res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': 10 });
    res.end('not found\n');
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': body.length });
  res.end(body);
});
server.on('clientError', (err, socket) => socket.destroy());
server.on('error', (err) => {
  console.error('http_node:', err.message);
  process.exit(1);
});
server.listen({ port, host: '127.0.0.1', backlog: 1024 });
