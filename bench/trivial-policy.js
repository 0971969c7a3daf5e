// The ceiling for the cached-decision figure (issue 20): a trivial Node policy server that
// answers `action=DUNNO` to every request (a request ends at an empty line), nothing else:
// no parsing into attributes, no decision, no log. bench/serve.js measures it in the same
// run, with the same client, as serve.
//
//   node bench/trivial-policy.js HOST PORT      (loopback only; prints `listening` once it does)
import net from 'node:net'

const [host, port] = [process.argv[2], Number(process.argv[3])]
if (!/^127\.\d+\.\d+\.\d+$/.test(host ?? '') || !(port > 0)) {
  console.error('usage: node bench/trivial-policy.js 127.x.y.z PORT')
  process.exit(2)
}
const REPLY = 'action=DUNNO\n\n'
const server = net.createServer({noDelay: true}, (socket) => {
  let tail = ''
  socket.setEncoding('latin1')
  socket.on('error', () => {})
  socket.on('data', (chunk) => {
    const text = tail + chunk
    let replies = 0
    let at = text.indexOf('\n\n')
    let end = 0
    while (at !== -1) {
      replies++
      end = at + 2
      at = text.indexOf('\n\n', end)
    }
    tail = text.slice(end)
    if (replies > 0) socket.write(REPLY.repeat(replies))
  })
})
server.listen({host, port}, () => console.log('listening'))
process.on('SIGTERM', () => process.exit(0))
