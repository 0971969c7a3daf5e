// The policy server of `smtpdcheck serve` (SPEC §11): listeners, connections, limits,
// replies in request order, deadlines, graceful close. What a request decides is injected
// (`decide`), so the server is tested on real sockets with a fake and the command plugs in
// the real check.
import {lstat, chmod, unlink} from 'node:fs/promises'
import net from 'node:net'

import {FatalError} from '../core/errors.js'
import {hostPort} from '../core/grammar.js'
import {Expiring} from './expiring.js'
import {decisionLine, type DecisionRecord} from './log.js'
import {listenText, DEFAULT_SOCKET_MODE, type Listen} from './listen.js'
import {formatReply, question, rememberingReaders, RequestParser, type Attributes, type Question, type Trouble} from './protocol.js'

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

/** Decides one query (`request`: its number, the tag of its trace); ends soon after `signal` aborts (reason 'timeout' or 'cancelled'). */
export type Decide = (query: Query, signal: AbortSignal, request: number) => Promise<Decision>

/** A decision decide() made for the same query a moment ago and that may be reused, at once; else undefined. */
export type Recall = (query: Query) => Decision | undefined

export interface ServerOptions {
  readonly listen: readonly Listen[]
  readonly decide: Decide
  /** Answers a request from memory before any deadline is set for it (default: never). */
  readonly recall?: Recall
  /** Each decision's deadline (0: none); past it the reply is DUNNO. */
  readonly timeoutMs: number
  readonly maxConnections?: number
  readonly idleTimeoutMs?: number
  readonly socketMode?: number
  /** One line, without program name or newline; the caller adds them (stderr, journald). */
  readonly log: (line: string) => void
  /** Milliseconds from any fixed origin (default performance.now). */
  readonly now?: () => number
  /** Told of each request answered, after its line is logged (the counters). */
  readonly onDecision?: (record: DecisionRecord) => void
}

export interface PolicyServer {
  /** Where it listens, port 0 resolved: `inet:127.0.0.1:40123`, `unix:/run/smtpdcheck/policy`. */
  readonly endpoints: readonly string[]
  /** Connections open now. */
  readonly connections: () => number
  /** Connection counters since start, for a stats line or metrics. */
  readonly stats: () => ServerStats
  /** Stop accepting, close idle connections, answer requests in flight, then resolve. */
  close(): Promise<void>
}

export interface ServerStats {
  /** Connections open now. */
  readonly connections: number
  /** Open now and not being read: their clients do not read their replies. */
  readonly stalled: number
  /** Connections accepted since start. */
  readonly accepted: number
  /** Idle connections closed at --max-connections to make room for a new one. */
  readonly evicted: number
  /** New connections closed at --max-connections: every open one had a request in flight. */
  readonly refused: number
  /** Connections closed for trouble (a malformed request stream). */
  readonly troubled: number
}

export const DEFAULT_MAX_CONNECTIONS = 1000
/** Postfix keeps an idle policy connection up to 300 s; we wait twice as long. */
export const DEFAULT_IDLE_TIMEOUT_MS = 600_000
/** Requests read ahead of their replies on one connection before reading pauses. */
const MAX_PIPELINED = 64
/** Requests parsed as soon as input arrives; more wait for the backlog's turn (`serveBacklogs`). */
const PARSE_AT_ONCE = 1
/** Requests parsed from backlogs in one turn of the event loop, over all connections in turn. */
const BACKLOG_PER_TURN = 64
/** After our FIN, how long a peer may take to close before the socket is destroyed. */
const LINGER_MS = 2000
/** At most one line per this many ms for a warning a flood repeats (accept errors, --max-connections). */
const FLOOD_LOG_MS = 1000

type Counter = 'accepted' | 'evicted' | 'refused' | 'troubled'

/** What one server shares with its connections. */
interface Context {
  readonly options: Omit<ServerOptions, 'listen'>
  readonly now: () => number
  readonly open: Set<Connection>
  /** Open connections with no request in flight, the one idle longest first; closed at the idle timeout. */
  readonly idle: Expiring<Connection>
  /** Requests in flight, the oldest first; answered DUNNO at --timeout. */
  readonly deadlines: Expiring<InFlight>
  /** Open connections not read because their replies back up. */
  readonly stalled: Set<Connection>
  /** Connections with requests read and not parsed, and room to parse them: served in turn. */
  readonly backlog: Set<Connection>
  backlogScheduled: boolean
  readonly counts: Record<Counter, number>
  /** Rate-limited warnings, one limit per kind, so that one flood does not hide another. */
  readonly warnOften: Record<'accept' | 'evict' | 'refuse', (text: string) => void>
  closing: boolean
  /** Requests received so far (each one's number in the log). */
  requests: number
  /** The reply text of each decision still referenced (a remembered one is recalled many times). */
  readonly replies: WeakMap<Decision, string>
}

function makeContext(options: Omit<ServerOptions, 'listen'>): Context {
  const now = options.now ?? (() => performance.now())
  const flood = () => floodLogger(options.log, now)
  return {
    options, now, open: new Set(), stalled: new Set(), backlog: new Set(), backlogScheduled: false, closing: false, requests: 0, replies: new WeakMap(),
    idle: new Expiring(options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, now, (connection) => connection.evict()),
    deadlines: new Expiring(options.timeoutMs, now, (request) => request.abort('timeout')),
    counts: {accepted: 0, evicted: 0, refused: 0, troubled: 0},
    warnOften: {accept: flood(), evict: flood(), refuse: flood()},
  }
}

/** Start listening on every --listen endpoint; a failure closes those already open. */
export async function startPolicyServer(options: ServerOptions): Promise<PolicyServer> {
  const context = makeContext(options)
  const servers: net.Server[] = []
  const endpoints: string[] = []
  try {
    for (const listen of options.listen) {
      const server = createListener(context, listen)
      servers.push(server)
      endpoints.push(await bind(server, listen, options.socketMode ?? DEFAULT_SOCKET_MODE))
    }
  } catch (error) {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
    throw error
  }
  return {
    endpoints,
    connections: () => context.open.size,
    stats: () => statsOf(context),
    close: () => closeAll(context, servers),
  }
}

function statsOf(context: Context): ServerStats {
  return {connections: context.open.size, stalled: context.stalled.size, ...context.counts}
}

/** Serve one stream that is already open (`serve --stdio`) as a connection; `closed` resolves when it ends. */
export function serveStream(options: Omit<ServerOptions, 'listen'>, socket: net.Socket): {closed: Promise<void>; server: Omit<PolicyServer, 'endpoints'>} {
  const context = makeContext(options)
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.on('error', () => {})
  context.counts.accepted++
  context.open.add(new Connection(context, socket, 'client on standard input'))
  return {closed, server: {connections: () => context.open.size, stats: () => statsOf(context), close: () => closeAll(context, [])}}
}

/** A net.Server whose connections are served; an accept error is logged, never fatal. */
function createListener(context: Context, listen: Listen): net.Server {
  const server = net.createServer({allowHalfOpen: true, noDelay: true})
  server.on('connection', (socket) => accept(context, socket, () => peerText(socket, server, listen)))
  server.on('error', (error: NodeJS.ErrnoException) => {
    // Listen errors are bind()'s. Out of descriptors, libuv itself accepts and closes the
    // pending connections (its EMFILE trick) and keeps listening, without telling us.
    if (server.listening) context.warnOften.accept(`cannot accept a connection: ${error.code ?? error.message}`)
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

/**
 * Serve a new connection. At --max-connections the connection idle longest is closed to make
 * room (Postfix reconnects on its next request), so that idle connections held by one local
 * process cannot lock the MTA out; only when every open connection has a request in flight
 * is the new one closed. Closing: closed at once.
 */
function accept(context: Context, socket: net.Socket, peerOf: () => string): void {
  socket.on('error', () => {})
  if (context.closing) return void socket.destroy()
  const peer = peerOf()
  const max = context.options.maxConnections ?? DEFAULT_MAX_CONNECTIONS
  if (context.open.size >= max) {
    const idlest = context.idle.oldest()
    if (idlest === undefined) {
      context.counts.refused++
      context.warnOften.refuse(`${peer}: ${max} connections open (--max-connections), each with a request in flight; closing this one`)
      return void socket.destroy()
    }
    context.counts.evicted++
    context.warnOften.evict(`${max} connections open (--max-connections): closing the one idle longest (${idlest.peer}, idle ${idlest.idleSeconds()} s) for ${peer}`)
    idlest.evict()
  }
  context.counts.accepted++
  context.open.add(new Connection(context, socket, peer))
}

/**
 * How a client is named in the log: its address, asked at accept; on a unix socket, or
 * when it reset before it could be asked, the endpoint it came to.
 */
function peerText(socket: net.Socket, server: net.Server, listen: Listen): string {
  if (listen.kind === 'unix') return `client on ${listenText(listen)}`
  if (socket.remoteAddress) return `client ${hostPort(socket.remoteAddress, socket.remotePort ?? 0)}`
  const address = server.address() as net.AddressInfo | null
  return `client (address unknown: connection reset) on ${listenText(address ? {kind: 'inet', host: address.address, port: address.port} : listen)}`
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

/** Queue `connection`'s unparsed requests for the next backlog turn. */
function joinBacklog(context: Context, connection: Connection): void {
  if (context.backlog.has(connection)) return
  context.backlog.add(connection)
  if (context.backlogScheduled) return
  context.backlogScheduled = true
  setImmediate(() => serveBacklogs(context))
}

/**
 * One backlog turn: BACKLOG_PER_TURN requests at most, a batch per connection in turn, each
 * going to the back of the queue. Input that arrives (a Postfix client's one request) is
 * parsed between turns, so clients pipelining thousands of requests (or never reading their
 * replies) cost the others a turn's work at most, not theirs all.
 */
function serveBacklogs(context: Context): void {
  context.backlogScheduled = false
  let budget = BACKLOG_PER_TURN
  for (const connection of context.backlog) {
    if (budget <= 0) break
    context.backlog.delete(connection)
    budget -= Math.max(1, connection.serveBacklog(Math.min(budget, MAX_PIPELINED)))
  }
  if (context.backlog.size > 0 && !context.backlogScheduled) {
    context.backlogScheduled = true
    setImmediate(() => serveBacklogs(context))
  }
}

/** A request that asks for a decision. */
type Asked = Question & {kind: 'decide'}

const DUNNO_REPLY = formatReply(undefined)

/** The query of a request that asks for a decision. */
function query(asked: Asked): Query {
  return asked.serverAddress === undefined ? {domain: asked.domain} : {domain: asked.domain, serverAddress: asked.serverAddress}
}

/** A decision in flight: `abort` ends it at once with DUNNO ('timeout' or 'cancelled'). */
interface InFlight {
  abort(reason: 'timeout' | 'cancelled'): void
}

/** One reply slot: filled when its decision ends; replies leave in slot order. */
interface Slot {
  reply?: string
}

/**
 * One client connection: parse, decide concurrently, reply in request order. What it holds
 * is bounded: the input read but not parsed (one read, up to 64 KiB), the parser's one
 * unfinished request, at most MAX_PIPELINED requests in flight, and replies the kernel has
 * not taken up to the socket's high-water mark. Past those it stops reading (`#step`).
 */
class Connection {
  readonly peer: string
  readonly #context: Context
  readonly #socket: net.Socket
  readonly #parser = new RequestParser()
  readonly #slots: Slot[] = []
  readonly #inFlight = new Set<InFlight>()
  readonly #readers = rememberingReaders()
  #linger?: NodeJS.Timeout
  /** Bytes read but not parsed yet: parsing waits for room in #slots and for its turn. */
  #unread?: Uint8Array
  /** The client half-closed: #unread is all the input there will be. */
  #ended = false
  /** No more requests are read: input ended and all parsed, trouble, or server closing. */
  #done = false
  #troubled = false
  #closed: Promise<void>
  /** A #step is scheduled (#stepSoon). */
  #stepping = false

  constructor(context: Context, socket: net.Socket, peer: string) {
    this.#context = context
    this.#socket = socket
    this.peer = peer
    this.#closed = new Promise((resolve) => socket.once('close', () => resolve()))
    socket.on('data', (chunk: Buffer) => this.#read(chunk))
    socket.on('end', () => {
      this.#ended = true
      this.#step()
    })
    socket.on('drain', () => this.#step())
    socket.once('close', () => this.#gone())
    this.#step()
  }

  /** Server closing: idle → closed now; otherwise answer what is in flight, then close. */
  shutdown(): Promise<void> {
    this.#done = true
    this.#unread = undefined
    if (this.#slots.length === 0) this.#socket.destroy()
    else this.#step()
    return this.#closed
  }

  /** Closed to make room for a new connection, or at the idle timeout: no request is in flight. */
  evict(): void {
    this.#forget()
    this.#socket.destroy()
  }

  idleSeconds(): number {
    const now = this.#context.now()
    return Math.round((now - (this.#context.idle.joined(this) ?? now)) / 1000)
  }

  /** Input: a few requests are parsed at once (a Postfix client sends one at a time), the rest wait in the backlog. */
  #read(chunk: Buffer): void {
    if (this.#done) return // after trouble: input is drained and dropped
    const fresh = this.#unread === undefined
    this.#unread = fresh ? chunk : Buffer.concat([this.#unread!, chunk])
    if (fresh) this.#parse(PARSE_AT_ONCE)
    this.#step()
  }

  /** The backlog's turn (serveBacklogs): parse up to `most` requests; how many were. */
  serveBacklog(most: number): number {
    const parsed = this.#parse(most)
    this.#step()
    return parsed
  }

  /**
   * After anything happened (input, end of input, a reply ready, the client read its
   * replies): parse what there is room for, write the replies that are ready in order,
   * then read on, pause, go idle or close. The one place that decides what comes next.
   */
  #step(): void {
    if (this.#socket.destroyed) return
    this.#endOfInput()
    this.#flush()
    if (this.#slots.length > 0) this.#busy()
    else this.#idleNow()
    if (this.#done && this.#slots.length === 0) return this.#finish()
    const backedUp = this.#socket.writableNeedDrain
    if (backedUp) this.#context.stalled.add(this)
    else this.#context.stalled.delete(this)
    if (this.#troubled) return // draining (#trouble)
    const room = this.#slots.length < MAX_PIPELINED && !backedUp && !this.#done
    if (room && this.#unread !== undefined) joinBacklog(this.#context, this)
    else this.#context.backlog.delete(this)
    if (room && this.#unread === undefined) this.#socket.resume()
    else this.#socket.pause()
  }

  /**
   * Parse up to `most` requests of #unread, no more than there is room for, none while the
   * client leaves its replies unread. Returns how many were parsed.
   */
  #parse(most: number): number {
    const room = Math.min(most, MAX_PIPELINED - this.#slots.length)
    if (this.#done || this.#unread === undefined || room <= 0 || this.#socket.writableNeedDrain) return 0
    const step = this.#parser.push(this.#unread, room)
    this.#unread = step.rest
    for (const request of step.requests) this.#start(request)
    if (step.trouble) this.#trouble(step.trouble)
    return step.requests.length
  }

  /** At the end of input, once all of it is parsed: done, or trouble if it stopped inside a request. */
  #endOfInput(): void {
    if (!this.#ended || this.#done || this.#unread !== undefined) return
    const trouble = this.#parser.end()
    if (trouble) this.#trouble(trouble)
    this.#done = true
  }

  /** Log once, read nothing more, answer the good requests before it, then close. */
  #trouble(trouble: Trouble): void {
    this.#context.options.log(`warning: ${this.peer}: ${trouble.reason}; closing the connection without a reply`)
    this.#context.counts.troubled++
    this.#done = true
    this.#troubled = true
    this.#unread = undefined
    // Input is drained and dropped from now on, so that the replies before it are not lost to an RST.
    this.#socket.resume()
  }

  /** A slot for the request's reply: filled now when it is answered at once (#step writes it), else when decided. */
  #start(request: Attributes): void {
    const number = ++this.#context.requests
    const asked = question(request, this.#readers)
    const slot: Slot = {reply: this.#answerAtOnce(request, asked, number)}
    this.#slots.push(slot)
    if (slot.reply !== undefined) return
    void this.#answer(request, asked as Asked, number).then((reply) => {
      slot.reply = reply
      this.#stepSoon()
    })
  }

  /**
   * #step once the promise jobs running now are done: the replies of a batch decided from
   * memory leave in one write, not one system call each.
   */
  #stepSoon(): void {
    if (this.#stepping) return
    this.#stepping = true
    process.nextTick(() => {
      this.#stepping = false
      this.#step()
    })
  }

  /**
   * The reply when there is one at once, logged: DUNNO for a request that asks no decision,
   * or a decision recalled from memory (no deadline, no promise: the cached path is cheap).
   */
  #answerAtOnce(request: Attributes, asked: Question, number: number): string | undefined {
    if (asked.kind === 'dunno') {
      this.#logged(request, {request: number, domain: asked.domain, decision: 'dunno', note: asked.note})
      return DUNNO_REPLY
    }
    const decision = this.#context.options.recall?.(query(asked))
    return decision === undefined ? undefined : this.#replied(request, number, asked, decision, 0, true)
  }

  /** The reply to one request, within its deadline; logs one line. */
  async #answer(request: Attributes, asked: Asked, number: number): Promise<string> {
    const {now} = this.#context
    const started = now()
    const decision = await this.#decideWithin(query(asked), number)
    return this.#replied(request, number, asked, decision, now() - started, decision.cached ?? false)
  }

  /** The reply a decision gives (the same text each time a remembered decision is recalled), logged. */
  #replied(request: Attributes, number: number, asked: Asked, decision: Decision, ms: number, cached: boolean): string {
    const {replies} = this.#context
    let reply = replies.get(decision)
    if (reply === undefined) replies.set(decision, (reply = formatReply(decision.server)))
    const verdict = reply === DUNNO_REPLY ? 'dunno' : 'defer'
    this.#logged(request, {request: number, domain: asked.domain, decision: verdict, server: decision.server, ms, cached, note: decision.note})
    return reply
  }

  /** One line for the request, with Postfix's attributes that tie it to Postfix's own log. */
  #logged(request: Attributes, record: Omit<DecisionRecord, 'queue_id' | 'client_address' | 'instance'>): void {
    const {domain, decision, server, ms, cached, note} = record
    const full: DecisionRecord = {request: record.request, domain, decision, server, ms, cached, note,
      queue_id: request.get('queue_id') || undefined, client_address: request.get('client_address') || undefined, instance: request.get('instance') || undefined}
    this.#context.options.log(decisionLine(full))
    this.#context.options.onDecision?.(full)
  }

  /**
   * decide(), aborted with 'timeout' at the deadline ('cancelled' if the client leaves): the
   * request is answered DUNNO at once, whatever decide() does with its signal.
   */
  #decideWithin(query: Query, number: number): Promise<Decision> {
    const {timeoutMs, decide} = this.#context.options
    const controller = new AbortController()
    return new Promise<Decision>((resolve) => {
      let settled = false
      const finish = (decision: Decision) => {
        if (settled) return
        settled = true
        this.#context.deadlines.delete(request)
        this.#inFlight.delete(request)
        resolve(decision)
      }
      const request: InFlight = {
        abort: (reason) => {
          if (settled) return
          controller.abort(reason)
          finish({note: reason === 'timeout' ? `no decision within ${timeoutMs / 1000} s` : 'client went away'})
        },
      }
      this.#context.deadlines.add(request)
      this.#inFlight.add(request)
      const failed = (error: unknown) => finish({note: `decision failed: ${error instanceof Error ? error.message : String(error)}`})
      try {
        decide(query, controller.signal, number).then(finish, failed)
      } catch (error) {
        failed(error)
      }
    })
  }

  /** Write the replies that are ready, in order (several in one write). */
  #flush(): void {
    let ready = 0
    while (ready < this.#slots.length && this.#slots[ready].reply !== undefined) ready++
    if (ready === 0) return
    const replies = this.#slots.splice(0, ready)
    this.#socket.write(ready === 1 ? replies[0].reply! : replies.map((s) => s.reply).join(''))
  }

  /**
   * Nothing more will come and every reply is written: close (no FIN of ours after trouble
   * with nothing said). Until the peer closes too, the connection counts as open and idle.
   */
  #finish(): void {
    this.#context.stalled.delete(this)
    if (this.#troubled && this.#socket.bytesWritten === 0) return void this.#socket.destroy()
    if (this.#linger !== undefined) return
    this.#socket.end()
    this.#linger = setTimeout(() => this.#socket.destroy(), LINGER_MS)
  }

  /** A request is in flight: not idle. */
  #busy(): void {
    this.#context.idle.delete(this)
  }

  /**
   * No request in flight: idle since now, unless it already was (bytes of a partial request
   * are not activity: a slowloris is closed at the idle timeout and evicted first).
   */
  #idleNow(): void {
    this.#context.idle.add(this)
  }

  /** Out of the server's tables: not counted as open, idle or stalled any more. */
  #forget(): void {
    this.#context.idle.delete(this)
    this.#context.stalled.delete(this)
    this.#context.backlog.delete(this)
    this.#context.open.delete(this)
  }

  /** The socket is closed: abort decisions still running, forget the connection. */
  #gone(): void {
    clearTimeout(this.#linger)
    this.#done = true
    this.#unread = undefined
    for (const request of this.#inFlight) request.abort('cancelled')
    this.#forget()
  }
}
