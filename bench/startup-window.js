// The start-up window (issue 19, man page EXIT STATUS): how long after spawn a signal still
// finds Node.js starting rather than bin/run.js's handlers. Not part of `npm run bench`
// (its figure is the machine's, not the tool's): `node bench/startup-window.js [rounds]`.
// For each delay after spawn (0–300 ms, 10 ms steps, `rounds` times each, interleaved), the
// built command probing a silent loopback server is sent SIGUSR1 and, in another run,
// SIGHUP; the outcome is counted: killed by the signal (Node.js had no handler yet), exit 2
// after Node.js opened its inspector (SIGUSR1 found Node's own handler), or exit 2 (ours).
// Prints the last delay at which each early outcome was seen, beside a bare `node -e ""`.
import os from 'node:os'

import {median, startTimed} from '../fixtures/spawn.js'
import {startSmtp} from '../fixtures/smtp.js'

const BIN = new URL('../bin/run.js', import.meta.url).pathname
const rounds = Number(process.argv[2] ?? 3)
const silent = await startSmtp({host: '127.30.19.9'})
const bare = []
const last = {SIGUSR1: {killed: -1, inspector: -1}, SIGHUP: {killed: -1, inspector: -1}}
try {
  for (let round = 0; round < rounds; round++) {
    bare.push((await startTimed(['-e', '']).done).ms)
    for (let ms = 0; ms <= 300; ms += 10) {
      for (const signal of ['SIGUSR1', 'SIGHUP']) {
        const {child, done} = startTimed([BIN, '--no-cache', '--timeout', '3', '--port', String(silent.port), '127.30.19.9'], {limitMs: 20_000})
        setTimeout(() => child.kill(signal), ms)
        const r = await done
        if (r.signal === signal) last[signal].killed = Math.max(last[signal].killed, ms)
        else if (r.stderr.includes('Debugger listening')) last[signal].inspector = Math.max(last[signal].inspector, ms)
      }
    }
  }
} finally {
  await silent.close()
}
const when = (ms) => (ms < 0 ? 'never' : `${ms} ms`)
console.log(`node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, ${rounds} rounds`)
console.log(`node -e "": median ${median(bare).toFixed(0)} ms`)
console.log(`SIGUSR1: killed by it up to ${when(last.SIGUSR1.killed)} after spawn; Node's inspector opened up to ${when(last.SIGUSR1.inspector)}`)
console.log(`SIGHUP: killed by it up to ${when(last.SIGHUP.killed)} after spawn`)
