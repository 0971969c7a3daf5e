// `npm run bench`: every figure of bench/ in one table (markdown, for the README), with the
// machine it was measured on. Each bench module exports run() → rows {name, value, target,
// pass, ratio?}; a module that is missing or fails gives a row saying so. Exit 1 if any fails.
import os from 'node:os'

const MODULES = ['./startup.js', './happy-eyeballs.js', './cache.js', './mx.js', './serve.js', './freshness.js']

const rows = []
for (const path of MODULES) {
  let module
  try {
    module = await import(path)
  } catch (error) {
    rows.push({name: `bench/${path.slice(2)}`, value: `missing (${error.code ?? error.message})`, target: '—', pass: false})
    continue
  }
  try {
    rows.push(...(await module.run()))
  } catch (error) {
    rows.push({name: `bench/${path.slice(2)}`, value: `failed: ${String(error.message ?? error).split('\n')[0]}`, target: '—', pass: false})
  }
}

const cell = (text) => String(text).replaceAll('|', '\\|')
const cpu = os.cpus()[0]?.model ?? 'unknown cpu'
console.log(`Machine: node ${process.version}, ${cpu.trim()}, nproc ${os.availableParallelism()}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n`)
console.log('| figure | measured | target | ratio | result |')
console.log('| --- | --- | --- | --- | --- |')
for (const r of rows) console.log(`| ${cell(r.name)} | ${cell(r.value)} | ${cell(r.target)} | ${cell(r.ratio ?? '—')} | ${r.pass ? 'pass' : 'FAIL'} |`)
if (rows.some((r) => !r.pass)) process.exitCode = 1
