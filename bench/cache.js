// The cache's pay-off (issue 5): the wall time of a run made after an all-dead first run
// (one blackholed candidate, --timeout 1), against a bare `node -e ""`, measured side by
// side and interleaved so that machine noise hits both alike. The first run waits out its
// budget and writes the cache; every later run reads it, skips the address and exits 0.
// `node bench/cache.js [runs]` prints the rows; bench/run.js imports run(). dist/ must be built.
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {startBlackhole} from '../fixtures/smtp.js'
import {median, runTimed} from '../fixtures/spawn.js'

const BIN = fileURLToPath(new URL('../bin/run.js', import.meta.url))
const TARGET = 1.4

/** Runs `node args`: wall ms and output; rejects unless it exits with `status`. */
async function timed(args, status) {
  const r = await runTimed(args, {limitMs: 20_000})
  if (r.status !== status) throw new Error(`node ${args.join(' ')}: exit ${r.status}, expected ${status}: ${r.stdout}${r.stderr}`)
  return r
}

/** Rows {name, value, target, ratio, pass}. */
export async function run({runs = 21} = {}) {
  const hole = await startBlackhole('127.0.0.1')
  const dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-bench-cache-'))
  try {
    // A long negative TTL so that a slow machine cannot let the entry expire mid-bench.
    const check = [BIN, '--cache-file', join(dir, 'cache.json'), '--negative-ttl', '3600', '--timeout', '1', '--port', String(hole.port), '127.0.0.1']
    const first = await timed(check, 0)
    const proof = JSON.parse((await timed([...check, '--json'], 0)).stdout)
    const outcome = proof.entries[0].attempts.map((a) => `${a.outcome} ${a.cachedAs ?? ''}`.trim()).join(', ')
    if (outcome !== 'cached unavailable') throw new Error(`the second run was not answered from the cache: ${outcome}`)
    const node = ['-e', '']
    const times = {node: [], cached: []}
    for (let i = 0; i < runs; i++) {
      times.node.push((await timed(node, 0)).ms)
      times.cached.push((await timed(check, 0)).ms)
    }
    const base = median(times.node)
    const cached = median(times.cached)
    const ratio = cached / base
    return [
      {
        name: `second run after an all-dead first run (blackholed, --timeout 1; median of ${runs}, interleaved)`,
        value: `${cached.toFixed(1)} ms (node -e "": ${base.toFixed(1)} ms; the first, uncached run: ${first.ms.toFixed(0)} ms)`,
        target: `≤ ${TARGET}×`,
        ratio: `${ratio.toFixed(2)}×`,
        pass: ratio <= TARGET,
      },
    ]
  } finally {
    await hole.close()
    rmSync(dir, {recursive: true, force: true})
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const r of await run({runs: Number(process.argv[2] ?? 21)})) {
    console.log(`${r.pass ? 'pass' : 'FAIL'}  ${r.ratio.padStart(6)}  ${r.target.padEnd(8)} ${r.name}: ${r.value}`)
  }
}
