// Start-up cost of the built CLI against a bare `node -e ""` (issue 7): wall time of a run
// that probes nothing, of a run that probes one live loopback server, and peak RSS.
// Runs are interleaved so that machine noise hits every command alike.
// `node bench/startup.js [runs]` prints the rows; bench/run.js imports run().
import {spawn} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {startSmtp} from '../fixtures/smtp.js'

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url))

/** Wall time of one run in ms; rejects when the exit status is not the expected one. */
function timeRun(args, expectStatus) {
  const started = performance.now()
  const child = spawn(process.execPath, args, {stdio: ['ignore', 'ignore', 'pipe']})
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
  const killer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  return new Promise((resolve, reject) => {
    child.on('close', (status) => {
      clearTimeout(killer)
      const ms = performance.now() - started
      if (status === expectStatus) resolve(ms)
      else reject(new Error(`${args.join(' ')}: exit ${status}, expected ${expectStatus} ${stderr}`))
    })
  })
}

/** Peak RSS in KiB of one run: python3 reports the max RSS of its only child. */
function peakRss(args) {
  const script = 'import resource,subprocess,sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)'
  const child = spawn('python3', ['-c', script, process.execPath, ...args], {stdio: ['ignore', 'pipe', 'inherit']})
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d) => (out += d))
  return new Promise((resolve, reject) => {
    child.on('close', (status) => (status === 0 ? resolve(Number(out.trim())) : reject(new Error('python3 rusage failed'))))
  })
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Rows {name, value, target, ratio, pass} of the start-up figures. */
export async function run({runs = 30, rssRuns = 5} = {}) {
  const smtp = await startSmtp({greeting: '220 bench ESMTP\r\n'})
  const dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-bench-'))
  try {
    const cases = {
      node: {args: ['-e', ''], status: 0},
      noProbe: {args: [BIN, '--stop', '127.0.0.1', '10:127.0.0.1'], status: 0},
      probe: {args: [BIN, '--cache-file', join(dir, 'cache.json'), '--port', String(smtp.port), '127.0.0.1'], status: 1},
    }
    const times = {node: [], noProbe: [], probe: []}
    for (const c of Object.values(cases)) await timeRun(c.args, c.status) // warm the file cache
    for (let i = 0; i < runs; i++) {
      for (const [key, c] of Object.entries(cases)) times[key].push(await timeRun(c.args, c.status))
    }
    const rss = {node: [], probe: []}
    for (let i = 0; i < rssRuns; i++) {
      rss.node.push(await peakRss(cases.node.args))
      rss.probe.push(await peakRss(cases.probe.args))
    }
    const node = median(times.node)
    const nodeRss = median(rss.node)
    const row = (name, value, base, unit, target, stretch) => {
      const ratio = value / base
      return {
        name,
        value: `${value.toFixed(unit === 'ms' ? 1 : 0)} ${unit} (node -e "": ${base.toFixed(unit === 'ms' ? 1 : 0)} ${unit})`,
        target: `≤ ${target}×${stretch ? ` (stretch ${stretch}×)` : ''}`,
        ratio: `${ratio.toFixed(2)}×`,
        pass: ratio <= target,
      }
    }
    return [
      row(`start-up, nothing probed (median of ${runs})`, median(times.noProbe), node, 'ms', 1.3, 1.15),
      row(`start-up, one live loopback probe (median of ${runs})`, median(times.probe), node, 'ms', 1.4),
      row(`peak RSS of a probe run (median of ${rssRuns})`, median(rss.probe), nodeRss, 'KiB', 1.3),
    ]
  } finally {
    await smtp.close()
    rmSync(dir, {recursive: true, force: true})
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const runs = Number(process.argv[2] ?? 30)
  for (const r of await run({runs})) console.log(`${r.pass ? 'pass' : 'FAIL'}  ${r.ratio.padStart(6)}  ${r.target.padEnd(22)} ${r.name}: ${r.value}`)
}
