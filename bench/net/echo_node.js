// bench/net/echo_node.js - the Node.js peer of the echo benchmarks.
//
//   node echo_node.js PORT     listen on 127.0.0.1:PORT until killed
//
// One process, the net module: every connection is piped into itself
// (socket.pipe(socket): every byte read is written back, with
// back-pressure). TCP_NODELAY on every connection, backlog 1024.
'use strict';
const net = require('net');

const port = Number(process.argv[2]);
if (!port) {
  console.error('usage: node echo_node.js PORT');
  process.exit(2);
}
const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
server.on('error', (err) => {
  console.error('echo_node:', err.message);
  process.exit(1);
});
server.listen({ port, host: '127.0.0.1', backlog: 1024 });
