import {afterEach, describe, expect, it} from 'vitest'

import {closedPort, startSmtp} from '../fixtures/smtp.js'
import {runCli} from './cli.js'

async function run(args: string[]) {
  const {stdout, stderr, status} = await runCli(['--no-cache', ...args])
  return {stdout, stderr, status}
}

const servers: Array<{close: () => Promise<void>}> = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close()
})

describe('built binary, SPEC §6 rows', () => {
  it('prints the available candidate and exits 1 (issue 3 "done when")', async () => {
    const smtp = await startSmtp({host: '127.0.0.1', greeting: '220 primary ESMTP\r\n'})
    servers.push(smtp)
    const r = await run(['--port', String(smtp.port), '--stop', '127.0.0.2', '10:127.0.0.1', '20:127.0.0.2'])
    expect(r).toEqual({stdout: '127.0.0.1\n', stderr: '', status: 1})
  })

  it('exits 0 with nothing on stdout when no candidate answers', async () => {
    const port = await closedPort('127.0.0.1')
    const r = await run(['--port', String(port), '--stop', '127.0.0.2', '10:127.0.0.1', '20:127.0.0.2'])
    expect(r).toEqual({stdout: '', stderr: '', status: 0})
  })

  it('a usage error is one line on stderr, exit 2', async () => {
    const r = await run(['10:127.1'])
    expect(r.status).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^smtpdcheck: .*"10:127\.1".*\n$/)
  })
})
