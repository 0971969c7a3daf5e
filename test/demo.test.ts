// `npm run demo` (the README's first command, after the build): every scenario gives its
// expected verdict, including the --mx run and the serve exchange; the demo exits 0.
import {fileURLToPath} from 'node:url'
import {describe, expect, it} from 'vitest'

import {runTimed} from '../fixtures/spawn.js'

const DEMO = fileURLToPath(new URL('../fixtures/demo.js', import.meta.url))

describe('npm run demo', () => {
  it('runs every scenario with its expected exit status and stops every server', async () => {
    const r = await runTimed([DEMO], {limitMs: 60_000})
    expect(r.stdout).not.toContain('NOT the expected')
    expect(r.stdout).toContain('action=DEFER_IF_PERMIT 4.7.1 Please use server mx1.demo.test')
    expect((r.stdout.match(/^\$ smtpdcheck /gm) ?? []).length).toBe(7)
    expect(r.status).toBe(0)
  }, 70_000)
})
