// Run the built binary asynchronously (fixtures live in this process: never spawnSync).
import {spawn} from 'node:child_process'
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

export const BIN = new URL('../bin/run.js', import.meta.url).pathname

export interface CliResult {
  stdout: string
  stderr: string
  status: number | null
  ms: number
}

/**
 * A cache directory of the test run's own: a run that forgets --no-cache never reads or
 * writes the user's real cache, and ports cached by one test file cannot leak into another.
 */
const ISOLATED_ENV: NodeJS.ProcessEnv = {...process.env, XDG_CACHE_HOME: mkdtempSync(join(tmpdir(), 'smtpdcheck-test-cache-'))}

/** Run `bin/run.js args`; killed after `limitMs` so a hang fails the test instead of stalling it. */
export function runCli(args: readonly string[], options: {limitMs?: number; env?: NodeJS.ProcessEnv} = {}): Promise<CliResult> {
  const started = performance.now()
  const child = spawn(process.execPath, [BIN, ...args], {env: options.env ?? ISOLATED_ENV, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
  const killer = setTimeout(() => child.kill('SIGKILL'), options.limitMs ?? 15_000)
  return new Promise((resolve) => {
    child.on('close', (status) => {
      clearTimeout(killer)
      resolve({stdout, stderr, status, ms: performance.now() - started})
    })
  })
}
