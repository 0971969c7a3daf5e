// The policy server as a process (fixtures/policy-server.js, a fake decide): SIGTERM with
// requests in flight, out of file descriptors, unix sockets.
import {execFileSync} from 'node:child_process'
import {mkdtempSync, statSync, writeFileSync, existsSync, readFileSync} from 'node:fs'
import net from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {afterEach, describe, expect, it} from 'vitest'

import {startTimed, type Run} from '../../fixtures/spawn.js'
import {DEFER, DUNNO, hold, rcpt, talk, type Target} from './client.js'

const FIXTURE = new URL('../../fixtures/policy-server.js', import.meta.url).pathname
const started: Array<{child: import('node:child_process').ChildProcess}> = []
afterEach(() => {
  for (const {child} of started.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

interface Fixture {
  child: import('node:child_process').ChildProcess
  output: {stdout: string; stderr: string}
  done: Promise<Run>
  targets: Target[]
}

/** Start the fixture with `scenario` (optionally under `ulimit -n`); resolves when it listens or has exited. */
async function startServer(scenario: object, options: {nofile?: number} = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-policy-'))
  const file = join(dir, 'scenario.json')
  writeFileSync(file, JSON.stringify(scenario))
  const args = options.nofile === undefined ? [FIXTURE, file] : ['-c', `ulimit -n ${options.nofile} && exec "$0" "$@"`, process.execPath, FIXTURE, file]
  const run = startTimed(args, {command: options.nofile === undefined ? undefined : 'bash', limitMs: 30_000})
  started.push(run)
  let exited = false
  void run.done.then(() => (exited = true))
  for (let i = 0; i < 250 && !exited && !run.output.stdout.includes('ready\n'); i++) await sleep(20)
  const targets = [...run.output.stdout.matchAll(/^listening (inet|unix):(.*)$/gm)].map(([, kind, rest]): Target => {
    if (kind === 'unix') return {path: rest}
    const port = Number(rest.slice(rest.lastIndexOf(':') + 1))
    return {host: rest.slice(0, rest.lastIndexOf(':')).replace(/^\[|\]$/g, ''), port}
  })
  return {...run, targets}
}

const tempDir = () => mkdtempSync(join(tmpdir(), 'smtpdcheck-sock-'))

describe('SIGTERM', () => {
  it('with requests in flight: stops accepting, closes idle connections, answers in-flight requests, exits 0 within deadline + 1 s', async () => {
    const server = await startServer({
      listen: ['inet:127.0.12.1:0'],
      timeoutMs: 2000,
      decisions: {'slow.example': {server: 'mx1.slow.example', delayMs: 800}, 'hang.example': {delayMs: -1}},
    })
    const [target] = server.targets
    const idle = await hold(target)
    const slow = Array.from({length: 5}, () => talk(target, rcpt('a@slow.example'), {halfClose: false, limitMs: 8000}))
    const hang = talk(target, rcpt('a@hang.example'), {halfClose: false, limitMs: 8000})
    await sleep(200)
    const signalled = performance.now()
    server.child.kill('SIGTERM')
    expect(await Promise.race([idle.closed, sleep(1500).then(() => 'still open')])).not.toBe('still open')
    for (const got of await Promise.all(slow)) expect(got).toMatchObject({text: DEFER('mx1.slow.example'), end: 'eof'})
    expect(await hang).toMatchObject({text: DUNNO, end: 'eof'})
    const run = await server.done
    expect(run.status).toBe(0)
    expect(performance.now() - signalled).toBeLessThan(2000 + 1000 + 500)
    expect(run.stdout).toContain('closed\n')
    expect(run.stderr).toContain('note="no decision within 2 s"')
  })
})

describe('out of file descriptors', () => {
  it('with ulimit -n 64: connections beyond it are closed, open ones are still answered, nothing crashes, and it recovers', async () => {
    const server = await startServer({listen: ['inet:127.0.12.1:0'], decisions: {'up.example': {server: 'mx1.up.example'}}}, {nofile: 64})
    const [target] = server.targets
    expect(target).toBeDefined()
    const first = await hold(target)
    let replies = ''
    first.socket.setEncoding('latin1').on('data', (d: string) => (replies += d))
    // More connections than descriptors: libuv closes the ones it cannot take.
    let closedByServer = 0
    const flood = Array.from({length: 100}, () => {
      const socket = net.connect({...target, localAddress: '127.0.12.2'} as net.NetConnectOpts)
      socket.on('error', () => {})
      socket.on('close', () => closedByServer++)
      return socket
    })
    await sleep(1000)
    expect(closedByServer).toBeGreaterThan(0)
    expect(server.child.exitCode).toBeNull()
    first.socket.write(rcpt('a@up.example'))
    for (let i = 0; i < 100 && replies === ''; i++) await sleep(20)
    expect(replies).toBe(DEFER('mx1.up.example'))
    for (const socket of flood) socket.destroy()
    await sleep(500)
    expect((await talk(target, rcpt('b@up.example'))).text).toBe(DEFER('mx1.up.example'))
    first.socket.destroy()
    server.child.kill('SIGTERM')
    const run = await server.done
    expect(run.status).toBe(0)
    expect(run.stderr).not.toMatch(/Error|at .*\.js:\d+/)
  })
})

describe('unix sockets', () => {
  it('answers on the socket, with --socket-mode, and removes it on SIGTERM', async () => {
    const path = join(tempDir(), 'policy')
    const server = await startServer({listen: [`unix:${path}`], socketMode: '0660', decisions: {'up.example': {server: 'mx1.up.example'}}})
    expect(statSync(path).isSocket()).toBe(true)
    expect(statSync(path).mode & 0o777).toBe(0o660)
    expect((await talk({path}, rcpt('a@up.example'))).text).toBe(DEFER('mx1.up.example'))
    server.child.kill('SIGTERM')
    expect((await server.done).status).toBe(0)
    expect(existsSync(path)).toBe(false)
  })

  it('the default mode is 0666', async () => {
    const path = join(tempDir(), 'policy')
    const server = await startServer({listen: [`unix:${path}`]})
    expect(statSync(path).mode & 0o777).toBe(0o666)
    server.child.kill('SIGTERM')
    await server.done
  })

  it('a stale socket file (nothing listening) is replaced', async () => {
    const path = join(tempDir(), 'policy')
    execFileSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path])
    expect(statSync(path).isSocket()).toBe(true)
    const server = await startServer({listen: [`unix:${path}`], decisions: {'up.example': {server: 'mx1.up.example'}}})
    expect((await talk({path}, rcpt('a@up.example'))).text).toBe(DEFER('mx1.up.example'))
    server.child.kill('SIGTERM')
    expect((await server.done).status).toBe(0)
  })

  it('a socket a live server holds is an error (exit 2), and that server is left alone', async () => {
    const path = join(tempDir(), 'policy')
    let accepted = 0
    const live = net.createServer((s) => (accepted++, s.destroy()))
    await new Promise<void>((r) => live.listen(path, r))
    try {
      const run = await (await startServer({listen: ['inet:127.0.12.1:0', `unix:${path}`]})).done
      expect(run.status).toBe(2)
      expect(run.stderr).toBe(`smtpdcheck: cannot listen on unix:${path}: another server is listening on it\n`)
      await talk({path}, 'x', {limitMs: 1000})
      expect(accepted).toBe(2) // the liveness probe, and ours now
    } finally {
      await new Promise((r) => live.close(r))
    }
  })

  it('a path that is not a socket is an error (exit 2), and the file is left alone', async () => {
    const path = join(tempDir(), 'policy')
    writeFileSync(path, 'precious')
    const run = await (await startServer({listen: [`unix:${path}`]})).done
    expect(run.status).toBe(2)
    expect(run.stderr).toBe(`smtpdcheck: cannot listen on unix:${path}: the path exists and is not a socket\n`)
    expect(readFileSync(path, 'utf8')).toBe('precious')
  })

  it('an inet address in use is an error (exit 2)', async () => {
    const busy = net.createServer()
    await new Promise<void>((r) => busy.listen(0, '127.0.12.1', r))
    const {port} = busy.address() as net.AddressInfo
    try {
      const run = await (await startServer({listen: [`inet:127.0.12.1:${port}`]})).done
      expect(run.status).toBe(2)
      expect(run.stderr).toBe(`smtpdcheck: cannot listen on inet:127.0.12.1:${port}: EADDRINUSE\n`)
    } finally {
      await new Promise((r) => busy.close(r))
    }
  })
})
