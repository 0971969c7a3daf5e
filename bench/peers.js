// The policy servers Postfix admins run today, started by the bench on loopback with their
// configuration and state in a temp dir: postgrey (greylisting) and postfwd (postfwd2, a
// rule set with its request cache on, as Debian ships it). bench/install.sh installs them.
// Each start() resolves {name, host, port, close()} or {name, skipped: 'why'}.
// Bounded: a detached watchdog kills a peer after WATCHDOG_S even if the bench is killed.
import {spawn} from 'node:child_process'
import {chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {closedPort} from '../fixtures/smtp.js'

const WATCHDOG_S = 900
const START_LIMIT_MS = 15_000
/** postgrey's greylisting delay: a triplet seen this long ago passes (the bench warms, waits, measures). */
export const GREYLIST_DELAY_S = 1

/** Resolves once host:port accepts a connection; rejects after `ms`. */
export async function waitListening(host, port, ms = START_LIMIT_MS, alive = () => true) {
  const end = performance.now() + ms
  while (performance.now() < end && alive()) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect({host, port})
      const done = (up) => {
        socket.destroy()
        resolve(up)
      }
      socket.once('connect', () => done(true))
      socket.on('error', () => done(false))
      socket.setTimeout(500, () => done(false))
    })
    if (ok) return
    await sleep(50)
  }
  throw new Error(`nothing listens on ${host}:${port} after ${ms} ms`)
}

/** The uid and gid of system user `name`, or undefined. */
function account(name) {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`))
  if (!line) return undefined
  const [, , uid, gid] = line.split(':')
  return {uid: Number(uid), gid: Number(gid)}
}

/** Kill `pid` after WATCHDOG_S in a detached shell; returns a function that cancels it. */
function watchdog(pidOrFile) {
  const target = typeof pidOrFile === 'number' ? String(pidOrFile) : `$(cat ${pidOrFile} 2>/dev/null)`
  const dog = spawn('sh', ['-c', `sleep ${WATCHDOG_S}; kill ${target} 2>/dev/null`], {detached: true, stdio: 'ignore'})
  dog.unref()
  return () => {
    try {
      process.kill(-dog.pid, 'SIGKILL')
    } catch {}
  }
}

/** postgrey in the foreground on host:port, its db in a temp dir owned by the postgrey user. */
export async function startPostgrey(host) {
  const bin = '/usr/sbin/postgrey'
  const user = account('postgrey')
  if (!existsSync(bin) || !user) return {name: 'postgrey', skipped: 'postgrey is not installed (bench/install.sh)'}
  const dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-bench-postgrey-'))
  chownSync(dir, user.uid, user.gid)
  const port = await closedPort(host)
  const child = spawn(bin, [`--inet=${host}:${port}`, `--dbdir=${dir}`, '--user=postgrey', '--group=postgrey', `--pidfile=${join(dir, 'pid')}`,
    '--whitelist-clients=/dev/null', '--whitelist-recipients=/dev/null', `--delay=${GREYLIST_DELAY_S}`], {stdio: ['ignore', 'ignore', 'pipe']})
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
  const cancel = watchdog(child.pid)
  const close = async () => {
    cancel()
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await Promise.race([new Promise((r) => child.once('close', r)), sleep(3000).then(() => child.kill('SIGKILL'))])
    }
    rmSync(dir, {recursive: true, force: true})
  }
  try {
    await waitListening(host, port, START_LIMIT_MS, () => child.exitCode === null)
  } catch (error) {
    await close()
    return {name: 'postgrey', skipped: `did not start: ${error.message} ${stderr.trim().split('\n').at(-1) ?? ''}`}
  }
  return {name: 'postgrey', host, port, close}
}

/** postfwd2 (it daemonizes: stopped through its pid file) with a one-rule set for `domain`. */
export async function startPostfwd(host, domain) {
  const bin = ['/usr/sbin/postfwd2', '/usr/sbin/postfwd'].find((b) => existsSync(b))
  if (!bin || !account('postfw')) return {name: 'postfwd', skipped: 'postfwd is not installed (bench/install.sh)'}
  const dir = mkdtempSync(join(tmpdir(), 'smtpdcheck-bench-postfwd-'))
  chmodSync(dir, 0o755) // postfwd reads its rules as user postfw
  const rules = join(dir, 'postfwd.cf')
  const pidFile = join(dir, 'postfwd.pid')
  writeFileSync(rules, `id=R01; recipient_domain==${domain}; action=DUNNO\n`)
  const [port, cachePort] = [await closedPort(host), await closedPort(host)]
  // Debian's default ARGS: the request cache on, keyed by the recipient's domain. --perfmon (no log):
  // without syslog here (no /dev/log), and -L would write the log into the client's socket.
  const args = ['-f', rules, '--server_socket', `tcp:${host}:${port}`, '--cache_socket', `tcp:${host}:${cachePort}`, '--pidfile', pidFile,
    '-u', 'postfw', '-g', 'postfw', '--nodns', '--cache=600', '--cache-rdomain-only', '--cache-no-size', '--perfmon']
  const started = spawn(bin, args, {stdio: 'ignore'})
  // It forks its daemons and its first process exits; bounded all the same.
  await Promise.race([new Promise((r) => started.once('close', r)), sleep(START_LIMIT_MS).then(() => started.kill('SIGKILL'))])
  const cancel = watchdog(pidFile)
  const close = async () => {
    cancel()
    const pid = Number(existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : NaN)
    if (pid > 1) {
      try {
        process.kill(pid, 'SIGTERM')
      } catch {}
      for (let i = 0; i < 60 && existsSync(`/proc/${pid}`); i++) await sleep(50)
    }
    rmSync(dir, {recursive: true, force: true})
  }
  try {
    await waitListening(host, port)
  } catch (error) {
    await close()
    return {name: 'postfwd', skipped: `did not start: ${error.message}`}
  }
  return {name: 'postfwd', host, port, close}
}
