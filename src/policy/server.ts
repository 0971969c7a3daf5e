// The policy server of `smtpdcheck serve` (SPEC §11): listeners, connections, limits,
// replies in request order, deadlines, graceful close. What a request decides is injected
// (`decide`), so the server is tested on real sockets with a fake and the command plugs in
// the real check.
import {lstat, chmod, unlink} from 'node:fs/promises'
import net from 'node:net'

import {FatalError} from '../core/errors.js'
import {hostPort} from '../core/grammar.js'
import {printable} from '../core/greeting.js'
import {listenText, DEFAULT_SOCKET_MODE, type Listen} from './listen.js'
import {formatReply, question, RequestParser, type Attributes, type Trouble} from './protocol.js'

export interface Query {
  /** The recipient domain: ASCII, lower case, no trailing dot. */
  readonly domain: string
  /** The request's server_address (normalised), when it is an address: one identity of the local host. */
  readonly serverAddress?: string
}

export interface Decision {
  /** The more preferred MX that is up (as it will be printed), if any. */
  readonly server?: string
  /** Why, in a few words, for the log line. */
  readonly note: string
  readonly cached?: boolean
  /** False when the decision rests on DNS alone (nothing was to be probed). */
  readonly probed?: boolean
}

/** Decides one query; ends soon after `signal` aborts (reason 'timeout' or 'cancelled'). */
export type Decide = (query: Query, signal: AbortSignal) => Promise<Decision>

export interface ServerOptions {
  readonly listen: readonly Listen[]
  readonly decide: Decide
  /** Each decision's deadline (0: none); past it the reply is DUNNO. */
  readonly timeoutMs: number
  readonly maxConnections?: number
  readonly idleTimeoutMs?: number
  readonly socketMode?: number
  /** One line, without program name or newline; the caller adds them (stderr, journald). */
  readonly log: (line: string) => void
  /** Milliseconds from any fixed origin (default performance.now). */
  readonly now?: () => number
}

export interface PolicyServer {
  /** Where it listens, port 0 resolved: `inet:127.0.0.1:40123`, `unix:/run/smtpdcheck/policy`. */
  readonly endpoints: readonly string[]
  /** Connections open now. */
  readonly connections: () => number
  /** Stop accepting, close idle connections, answer requests in flight, then resolve. */
  close(): Promise<void>
}

export const DEFAULT_MAX_CONNECTIONS = 1000
/** Postfix keeps an idle policy connection up to 300 s; we wait twice as long. */
export const DEFAULT_IDLE_TIMEOUT_MS = 600_000
/** Requests read ahead of their replies on one connection before reading pauses. */
const MAX_PIPELINED = 64
/** After our FIN, how long a peer may take to close before the socket is destroyed. */
const LINGER_MS = 2000
/** At most one line per this many ms for a warning a flood repeats (accept errors, --max-connections). */
const FLOOD_LOG_MS = 1000

/** What one server shares with its connections. */
interface Context {
  readonly options: ServerOptions
  readonly now: () => number
  readonly open: Set<Connection>
  readonly warnOften: (text: string) => void
  closing: boolean
}

/** Start listening on every --listen endpoint; a failure closes those already open. */
export async function startPolicyServer(options: ServerOptions): Promise<PolicyServer> {
  const now = options.now ?? (() => performance.now())
  const context: Context = {options, now, open: new Set(), warnOften: floodLogger(options.log, now), closing: false}
  const servers: net.Server[] = []
  const endpoints: string[] = []
  try {
    for (const listen of options.listen) {
      const server = createListener(context)
      servers.push(server)
      endpoints.push(await bind(server, listen, options.socketMode ?? DEFAULT_SOCKET_MODE))
    }
  } catch (error) {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
    throw error
  }
  return {endpoints, connections: () => context.open.size, close: () => closeAll(context, servers)}
}

/** A net.Server whose connections are served; an accept error is logged, never fatal. */
function createListener(context: Context): net.Server {
  const server = net.createServer({allowHalfOpen: true, noDelay: true})
  server.on('connection', (socket) => accept(context, socket))
  server.on('error', (error: NodeJS.ErrnoException) => {
    // Listen errors are bind()'s. Out of descriptors, libuv itself accepts and closes the
    // pending connections (its EMFILE trick) and keeps listening, without telling us.
    if (server.listening) context.warnOften(`cannot accept a connection: ${error.code ?? error.message}`)
  })
  return server
}

/**
 * A logger for warnings that a flood repeats: at most one line per FLOOD_LOG_MS, the next
 * one counting those left out. Per server, not per module.
 */
function floodLogger(log: (line: string) => void, now: () => number): (text: string) => void {
  let last = -Infinity
  let missed = 0
  return (text) => {
    if (now() - last < FLOOD_LOG_MS) return void missed++
    log(`warning: ${text}${missed ? ` (${missed} more like it not logged)` : ''}`)
    last = now()
    missed = 0
  }
}

/** Serve a new connection, or close it at once when the server is full or closing. */
function accept(context: Context, socket: net.Socket): void {
  const max = context.options.maxConnections ?? DEFAULT_MAX_CONNECTIONS
  if (context.closing || context.open.size >= max) {
    if (!context.closing) context.warnOften(`${peerText(socket)}: ${max} connections open (--max-connections), closing this one`)
    socket.on('error', () => {})
    socket.destroy()
    return
  }
  context.open.add(new Connection(context, socket))
}

function peerText(socket: net.Socket): string {
  return socket.remoteAddress ? `client ${hostPort(socket.remoteAddress, socket.remotePort ?? 0)}` : 'client on unix socket'
}

/** listen() on one endpoint; a unix path is prepared first and chmod-ed after. */
async function bind(server: net.Server, listen: Listen, mode: number): Promise<string> {
  const name = listenText(listen)
  if (listen.kind === 'unix') await clearSocketPath(listen.path, name)
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => reject(new FatalError(`cannot listen on ${name}: ${error.code ?? error.message}`))
    server.once('error', onError)
    const done = () => {
      server.off('error', onError)
      resolve()
    }
    if (listen.kind === 'unix') server.listen(listen.path, done)
    else server.listen({host: listen.host, port: listen.port, ipv6Only: listen.host.includes(':')}, done)
  })
  if (listen.kind === 'unix') {
    await chmod(listen.path, mode).catch((error: NodeJS.ErrnoException) => {
      server.close()
      throw new FatalError(`cannot set the mode of ${name}: ${error.code ?? error.message}`)
    })
    return name
  }
  const address = server.address() as net.AddressInfo
  return listenText({kind: 'inet', host: address.address, port: address.port})
}

/**
 * A unix socket path must be free: a stale socket file (nothing accepts on it) is removed;
 * one a live server holds, or a file that is not a socket, is an error.
 */
async function clearSocketPath(path: string, name: string): Promise<void> {
  const stat = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined
    throw new FatalError(`cannot listen on ${name}: ${error.code ?? error.message}`)
  })
  if (stat === undefined) return
  if (!stat.isSocket()) throw new FatalError(`cannot listen on ${name}: the path exists and is not a socket`)
  if (await socketIsLive(path)) throw new FatalError(`cannot listen on ${name}: another server is listening on it`)
  await unlink(path).catch(() => {})
}

/** True when something accepts connections on the unix socket at `path` (or may: no answer in 1 s). */
function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect({path})
    const done = (live: boolean) => {
      probe.destroy()
      resolve(live)
    }
    probe.setTimeout(1000, () => done(true))
    probe.once('connect', () => done(true))
    probe.once('error', (error: NodeJS.ErrnoException) => done(error.code !== 'ECONNREFUSED' && error.code !== 'ENOENT'))
  })
}

/** Stop every listener, close idle connections, wait for those answering to finish. */
async function closeAll(context: Context, servers: readonly net.Server[]): Promise<void> {
  context.closing = true
  const listeners = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())))
  const connections = [...context.open].map((c) => c.shutdown())
  await Promise.all([...listeners, ...connections])
}

/** One reply slot: filled when its decision ends; replies leave in slot order. */
interface Slot {
  reply?: string
}

/** One client connection: parse, decide concurrently, reply in request order. */
class Connection {
  readonly #context: Context
  readonly #socket: net.Socket
  readonly #parser = new RequestParser()
  readonly #slots: Slot[] = []
  readonly #controllers = new Set<AbortController>()
  #idle?: NodeJS.Timeout
  #linger?: NodeJS.Timeout
  /** No more requests are read: input ended, trouble, or server closing. */
  #done = false
  #troubled = false
  /** Bytes read but not parsed yet (at most a chunk): parsing waits for room in #slots. */
  #unread?: Uint8Array
  #closed: Promise<void>

  constructor(context: Context, socket: net.Socket) {
    this.#context = context
    this.#socket = socket
    this.#closed = new Promise((resolve) => socket.once('close', () => resolve()))
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => this.#read(chunk))
    socket.on('end', () => this.#endOfInput())
    socket.once('close', () => this.#gone())
    this.#armIdle()
  }

  /** Server closing: idle → closed now; otherwise answer what is in flight, then close. */
  shutdown(): Promise<void> {
    this.#done = true
    if (this.#slots.length === 0) this.#socket.destroy()
    else this.#socket.pause()
    return this.#closed
  }

  #read(chunk: Buffer): void {
    if (this.#done) return
    this.#unread = this.#unread ? Buffer.concat([this.#unread, chunk]) : chunk
    this.#parse()
  }

  /** Parse what was read, up to MAX_PIPELINED requests waiting; pause while some is left. */
  #parse(): void {
    const room = MAX_PIPELINED - this.#slots.length
    if (this.#unread !== undefined && room > 0) {
      const step = this.#parser.push(this.#unread, room)
      this.#unread = step.rest
      for (const request of step.requests) this.#start(request)
      if (step.trouble) return this.#trouble(step.trouble)
    }
    if (this.#unread !== undefined || this.#socket.writableNeedDrain) this.#socket.pause()
  }

  #endOfInput(): void {
    if (this.#done) return
    const trouble = this.#parser.end()
    if (trouble) return this.#trouble(trouble)
    this.#done = true
    this.#flush()
  }

  /** Log once, read nothing more, answer the good requests before it, then close. */
  #trouble(trouble: Trouble): void {
    this.#context.options.log(`warning: ${peerText(this.#socket)}: ${trouble.reason}; closing the connection without a reply`)
    this.#done = true
    this.#troubled = true
    this.#unread = undefined
    this.#socket.resume() // keep draining input so that nothing more is parsed nor buffered
    this.#flush()
  }

  #start(request: Attributes): void {
    this.#disarmIdle()
    const slot: Slot = {}
    this.#slots.push(slot)
    void this.#answer(request).then((reply) => {
      slot.reply = reply
      this.#flush()
    })
  }

  /** The reply to one request, within its deadline; logs one line. */
  async #answer(request: Attributes): Promise<string> {
    const {options, now} = this.#context
    const asked = question(request)
    if (asked.kind === 'dunno') {
      options.log(`decision=dunno note="${asked.note}"`)
      return formatReply(undefined)
    }
    const started = now()
    const decision = await this.#decideWithin({domain: asked.domain, ...(asked.serverAddress === undefined ? {} : {serverAddress: asked.serverAddress})})
    options.log(decisionLine(asked.domain, decision, now() - started))
    return formatReply(decision.server)
  }

  /** decide(), aborted with 'timeout' at the deadline ('cancelled' if the client leaves). */
  #decideWithin(query: Query): Promise<Decision> {
    const controller = new AbortController()
    this.#controllers.add(controller)
    const {timeoutMs, decide} = this.#context.options
    return new Promise<Decision>((resolve) => {
      const timer = timeoutMs > 0 ? setTimeout(() => controller.abort('timeout'), timeoutMs) : undefined
      const finish = (decision: Decision) => {
        clearTimeout(timer)
        this.#controllers.delete(controller)
        resolve(decision)
      }
      controller.signal.addEventListener('abort', () => {
        const why = controller.signal.reason === 'timeout' ? `no decision within ${timeoutMs / 1000} s` : 'client went away'
        finish({note: why})
      })
      Promise.resolve()
        .then(() => decide(query, controller.signal))
        .then(finish, (error: unknown) => finish({note: `decision failed: ${error instanceof Error ? error.message : String(error)}`}))
    })
  }

  /** Write the replies that are ready, in order; close when nothing more will come. */
  #flush(): void {
    while (this.#slots.length > 0 && this.#slots[0].reply !== undefined) {
      const reply = this.#slots.shift()!.reply!
      if (!this.#socket.destroyed) this.#socket.write(reply)
    }
    if (this.#socket.destroyed) return
    if (!this.#done) return this.#readOn()
    if (this.#slots.length > 0) return
    if (this.#troubled && this.#socket.bytesWritten === 0) return void this.#socket.destroy()
    this.#socket.end()
    this.#linger = setTimeout(() => this.#socket.destroy(), LINGER_MS)
  }

  /** Read on while few requests wait and the peer reads its replies; idle when none wait. */
  #readOn(): void {
    if (this.#slots.length < MAX_PIPELINED && this.#unread !== undefined) this.#parse()
    if (this.#done) return
    if (this.#slots.length === 0) this.#armIdle()
    if (this.#unread !== undefined) return
    if (!this.#socket.writableNeedDrain) this.#socket.resume()
    else if (this.#socket.listenerCount('drain') === 0) this.#socket.once('drain', () => this.#readOn())
  }

  /** Idle: no request in flight. A partial request does not count as activity (slowloris). */
  #armIdle(): void {
    this.#disarmIdle()
    const ms = this.#context.options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
    if (ms > 0) this.#idle = setTimeout(() => this.#socket.destroy(), ms)
  }

  #disarmIdle(): void {
    clearTimeout(this.#idle)
  }

  /** The socket is closed: abort decisions still running, forget the connection. */
  #gone(): void {
    this.#disarmIdle()
    clearTimeout(this.#linger)
    this.#done = true
    for (const controller of this.#controllers) controller.abort('cancelled')
    this.#context.open.delete(this)
  }
}

/** `domain=example.org decision=defer server=mx1.example.org ms=12 cached=no note="…"` */
export function decisionLine(domain: string, decision: Decision, ms: number): string {
  const verdict = formatReply(decision.server).startsWith('action=DUNNO') ? 'dunno' : 'defer'
  const server = decision.server === undefined ? '' : ` server=${printable(decision.server)}`
  return `domain=${domain} decision=${verdict}${server} ms=${Math.round(ms)} cached=${decision.cached ? 'yes' : 'no'} note="${printable(decision.note)}"`
}
