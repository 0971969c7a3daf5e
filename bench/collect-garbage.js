// A full garbage collection in another Node process, through its inspector on loopback (the
// soak's server runs with --inspect=127.x.y.z:PORT): what its heap and RSS hold then is what
// stays, whenever V8 would have collected on its own.
//
//   node --experimental-websocket bench/collect-garbage.js 127.x.y.z:PORT   → {"usedBytes": N}
// (Node 20's WebSocket is behind that flag.) Ends within 20 s, exit 2 on any failure.
const where = process.argv[2] ?? ''
if (!/^127\.\d+\.\d+\.\d+:\d+$/.test(where)) {
  console.error('usage: node --experimental-websocket bench/collect-garbage.js 127.x.y.z:PORT')
  process.exit(2)
}
setTimeout(() => {
  console.error('collect-garbage: no answer within 20 s')
  process.exit(2)
}, 20_000).unref()

const [target] = await (await fetch(`http://${where}/json/list`)).json()
const socket = new WebSocket(target.webSocketDebuggerUrl)
const calls = new Map()
const call = (method) => new Promise((resolve, reject) => {
  const id = calls.size + 1
  calls.set(id, {resolve, reject})
  socket.send(JSON.stringify({id, method}))
})
socket.addEventListener('message', (event) => {
  const message = JSON.parse(event.data)
  const pending = calls.get(message.id)
  if (!pending) return
  if (message.error) pending.reject(new Error(message.error.message))
  else pending.resolve(message.result)
})
socket.addEventListener('error', () => {
  console.error(`collect-garbage: cannot talk to the inspector at ${where}`)
  process.exit(2)
})
await new Promise((resolve) => socket.addEventListener('open', resolve, {once: true}))
await call('HeapProfiler.collectGarbage')
const {usedSize} = await call('Runtime.getHeapUsage')
console.log(JSON.stringify({usedBytes: usedSize}))
socket.close()
process.exit(0)
