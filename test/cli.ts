// Run the built binary asynchronously (fixtures live in this process: never spawnSync).
import {mkdtempSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {runTimed, type Run} from '../fixtures/spawn.js'

export const BIN = new URL('../bin/run.js', import.meta.url).pathname

/** What runCli gives: a Run without `signal` (a run killed at the limit shows status null). */
export type CliResult = Omit<Run, 'signal'>

/**
 * A cache directory of the test run's own: a run that forgets --no-cache never reads or
 * writes the user's real cache, and ports cached by one test file cannot leak into another.
 */
const ISOLATED_ENV: NodeJS.ProcessEnv = {...process.env, XDG_CACHE_HOME: mkdtempSync(join(tmpdir(), 'smtpdcheck-test-cache-'))}

/** Run `bin/run.js args`; killed after `limitMs` so a hang fails the test instead of stalling it. */
export async function runCli(args: readonly string[], options: {limitMs?: number; env?: NodeJS.ProcessEnv} = {}): Promise<CliResult> {
  const {stdout, stderr, status, ms} = await runTimed([BIN, ...args], {env: options.env ?? ISOLATED_ENV, limitMs: options.limitMs ?? 15_000})
  return {stdout, stderr, status, ms}
}
