// Adversarial clients for bench/serve.js (issue 20): `count` connections that each write
// `requests` requests without ever reading a reply, as fast as the server takes them, then
// stay open. In a process of their own, so that the legitimate client measured beside them
// does not share their event loop. Loopback only; bounded: every socket is destroyed and the
// process exits after `limitMs`, or on SIGTERM / when its stdin closes.
//
//   node bench/deaf-clients.js HOST PORT FROM count requests limitMs DOMAIN SERVER_ADDRESS
// Prints `written N` once every connection has written everything the server took (or could).
import net from 'node:net'

import {rcpt} from './policy-client.js'

const [host, port, from, count, requests, limitMs, domain, serverAddress] = [process.argv[2], Number(process.argv[3]), process.argv[4], Number(process.argv[5]), Number(process.argv[6]), Number(process.argv[7]), process.argv[8], process.argv[9]]
if (!/^127\.\d+\.\d+\.\d+$/.test(host ?? '') || !/^127\.\d+\.\d+\.\d+$/.test(from ?? '') || !(port > 0 && count > 0 && requests > 0 && limitMs > 0) || !domain || !serverAddress) {
  console.error('usage: node bench/deaf-clients.js 127.x.y.z PORT 127.a.b.c count requests limitMs DOMAIN SERVER_ADDRESS')
  process.exit(2)
}
const sockets = []
const BATCH = 100
let done = 0
let written = 0
const finished = () => ++done === count && console.log(`written ${written}`)
for (let c = 0; c < count; c++) {
  const socket = net.connect({host, port, localAddress: from})
  sockets.push(socket)
  socket.pause() // never reads
  socket.on('error', () => {})
  let sent = 0
  let reported = false
  const report = () => reported || ((reported = true), finished())
  const pump = () => {
    while (!socket.destroyed && sent < requests) {
      const n = Math.min(BATCH, requests - sent)
      const text = Array.from({length: n}, (_, i) => rcpt(`d${c}.${sent + i}@${domain}`, {server_address: serverAddress})).join('')
      sent += n
      written += n
      if (!socket.write(text)) return void socket.once('drain', pump)
    }
    report()
  }
  socket.once('connect', pump)
  // A server that stops reading leaves a write pending for good: count it as done after 2 s.
  setTimeout(report, 2000).unref()
}
const end = () => {
  for (const s of sockets) s.destroy()
  process.exit(0)
}
setTimeout(end, limitMs)
process.on('SIGTERM', end)
process.stdin.on('end', end).resume()
