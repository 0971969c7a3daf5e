// Start-up cost of the built CLI against a bare `node -e ""` (issue 7): wall time of a run
// that probes nothing, of a run that probes one live loopback server, and peak RSS.
// Runs are interleaved so that machine noise hits every command alike.
// `node bench/startup.js [runs]` prints the rows; bench/run.js imports run().
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {startSmtp} from '../fixtures/smtp.js'
import {median, runTimed} from '../fixtures/spawn.js'

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url))

/** Wall time of one run in ms; rejects when the exit status is not the expected one. */
async function timeRun(args, expectStatus) {
  const r = await runTimed(args, {limitMs: 10_000, stdio: ['ignore', 'ignore', 'pipe']})
  if (r.status !== expectStatus) throw new Error(`${args.join(' ')}: exit ${r.status}, expected ${expectStatus} ${r.stderr}`)
  return r.ms
}

/** Peak RSS in KiB of one run: python3 reports the max RSS of its only child. */
async function peakRss(args) {
  const script = 'import resource,subprocess,sys; subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)'
  const r = await runTimed(['-c', script, process.execPath, ...args], {command: 'python3', stdio: ['ignore', 'pipe', 'inherit']})
  if (r.status !== 0) throw new Error('python3 rusage failed')
  return Number(r.stdout.trim())
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
