// A stub resolver (RFC 1035 §7 client) on dns-packet, for the system's name servers or
// --dns-server: A, AAAA and MX over a few shared sockets. Why not c-ares (node:dns): it gives
// no MX TTL, reports a socket it could not open as ECONNREFUSED, and its cancel() cancels
// every query of a resolver, which made us open one resolver (one socket) per lookup.
// No module-level state: everything lives in the object createDnsClient() returns.
import type {Socket as UdpSocket} from 'node:dgram'
import type {Socket as TcpSocket} from 'node:net'

import type {Answer, Packet, Question} from 'dns-packet'

import {OUT_OF_RESOURCES} from './errors.js'
import {canonicalName, hostPort, literalFamily, type HostPort} from './grammar.js'
import {parseResolvConf, RESOLV_CONF, type ResolvConf} from './resolv-conf.js'

export type QueryType = 'A' | 'AAAA' | 'MX'
export interface MxData {
  readonly preference: number
  readonly exchange: string
}
/** An A or AAAA record's data is its address; an MX record's, its preference and exchange. */
export type DataOf<T extends QueryType> = T extends 'MX' ? MxData : string

export interface DnsAnswer<T> {
  readonly records: T[]
  /** Seconds the answer may be kept: the least TTL of the records used (CNAMEs included). */
  readonly ttl: number
}

/**
 * A failed query. `code`: ENOTFOUND (NXDOMAIN), ENODATA (no record of the type), ESERVFAIL,
 * EREFUSED, EFORMERR, ENOTIMP, EBADRESP (an answer we cannot use), ETIMEOUT (no answer),
 * ECONNREFUSED (the server's port is closed), ECANCELLED (the caller left, or the client
 * closed), or the code of a socket operation that failed here — EMFILE, ENFILE, ENOBUFS,
 * ENOMEM are this host's own shortage (errors.ts OUT_OF_RESOURCES), never a DNS answer.
 * `ttl`: for NXDOMAIN / ENODATA, how long the negative answer may be kept (RFC 2308), if the
 * server said (an SOA record).
 */
export class DnsError extends Error {
  override name = 'DnsError'
  constructor(
    readonly code: string,
    readonly ttl?: number,
  ) {
    super(code)
  }
}

export interface DnsLimits {
  /** DNS sockets open at once, UDP and TCP together (UDP: at most `sockets - tcp`). */
  readonly sockets: number
  /** Of which TCP connections (answers too long for UDP). */
  readonly tcp: number
  /** Queries in flight at once; later ones wait in order. */
  readonly inFlight: number
  /** Queries sent over one UDP socket before the next ones go over a fresh one (a new random port), while the cap allows. */
  readonly rotateAfter: number
}

/** The caps (man page: RESOURCES). */
export const DNS_LIMITS: DnsLimits = {sockets: 32, tcp: 8, inFlight: 500, rotateAfter: 100}

/** Per-try timeout and tries per server when neither the caller nor resolv.conf says. */
export const DNS_TIMEOUT_MS = 2000
export const DNS_ATTEMPTS = 2

export interface DnsClientOptions {
  /** The servers to ask (--dns-server); default: /etc/resolv.conf's, read at the first query. */
  readonly servers?: readonly HostPort[]
  /** The resolv.conf to read when `servers` is not given. */
  readonly resolvConf?: string
  /** One try's timeout in ms (default: resolv.conf's `timeout:`, else DNS_TIMEOUT_MS). */
  readonly timeoutMs?: number
  /** Rounds over the servers (default: resolv.conf's `attempts:`, else DNS_ATTEMPTS). */
  readonly attempts?: number
  readonly limits?: Partial<DnsLimits>
  /** Monotonic milliseconds (when resolv.conf is read again). */
  readonly now?: () => number
  /**
   * Load dns-packet now rather than at the first query: for a long-lived process (serve),
   * since Node's ES module loader remembers a module that failed to load (under EMFILE) for good.
   */
  readonly preload?: boolean
}

export interface DnsStats {
  readonly udp: number
  readonly tcp: number
  readonly inFlight: number
  readonly queued: number
}

export interface DnsClient {
  /**
   * The records of `type` for `name`; rejects with a DnsError. Aborting `signal` rejects this
   * caller at once (ECANCELLED) and cancels nobody else's query: a query already sent keeps
   * its slot until its answer or its own timeout.
   */
  query<T extends QueryType>(name: string, type: T, signal?: AbortSignal): Promise<DnsAnswer<DataOf<T>>>
  /** Sockets and queries now (tests, stats). */
  stats(): DnsStats
  /** Ends every query (ECANCELLED) and closes every socket; resolves when they are closed. */
  close(): Promise<void>
}

/** resolv.conf is read again when the copy in use is older than this (serve follows changes). */
const RESOLV_CONF_MAX_AGE_MS = 5000
/** The EDNS0 UDP payload size we announce (the DNS Flag Day 2020 value). */
const EDNS_UDP_SIZE = 1232
/** CNAME hops followed inside one answer. */
const MAX_CNAME_HOPS = 8
/** The TC bit of the header flags: the answer did not fit (RFC 1035 §4.1.1). */
const TRUNCATED = 0x0200

type DnsPacket = typeof import('dns-packet')

/** One query of one caller; `deliver` is a no-op once the caller has left. */
interface Query {
  readonly name: string
  readonly type: QueryType
  abandoned: boolean
  deliver: (outcome: Outcome) => void
}
export type Outcome = {answer: DnsAnswer<unknown>; error?: never} | {answer?: never; error: DnsError}

/** What one exchange with one server gave. */
type Exchange = {kind: 'response'; packet: Packet} | {kind: 'failed'; code: string} | {kind: 'local'; code: string}

/** A UDP socket connected to one server, its queries keyed by ID. */
interface Channel {
  readonly socket: UdpSocket
  readonly server: HostPort
  readonly ready: Promise<string | undefined>
  readonly pending: Map<number, {query: Query; done: (exchange: Exchange) => void; timer: NodeJS.Timeout}>
  sent: number
  retired: boolean
}

/** A socket operation failed: this host's shortage (local), or a failed try. */
const local = (code: string): Exchange => (OUT_OF_RESOURCES.has(code) ? {kind: 'local', code} : {kind: 'failed', code})
const errorCode = (error: unknown): string => String((error as NodeJS.ErrnoException)?.code ?? error)

/** The client (see DnsClient). Nothing is opened or loaded before the first query. */
export function createDnsClient(options: DnsClientOptions = {}): DnsClient {
  const limits = {...DNS_LIMITS, ...options.limits}
  const now = options.now ?? (() => Number(process.hrtime.bigint()) / 1e6)
  const current = new Map<string, Channel>() // the channel new queries to a server use
  const channels = new Set<Channel>()
  const tcpSockets = new Set<TcpSocket>()
  const queue: Array<() => void> = [] // queries waiting for an in-flight slot
  let socketWaiters: Array<() => void> = [] // tries waiting for a socket slot
  let inFlight = 0
  let closed = false
  let packets: DnsPacket | undefined
  let conf: {read: number; value: Promise<ResolvConf>} | undefined

  /** dns-packet, loaded at the first query (a run that resolves nothing does not pay for it). */
  const codec = async (): Promise<DnsPacket> => {
    const loaded: DnsPacket & {default?: DnsPacket} = await import('dns-packet')
    return (packets ??= loaded.default ?? loaded)
  }
  if (options.preload) void codec().catch(() => {})

  /**
   * The servers and timing in force: the options', or resolv.conf's (read again when stale).
   * No file is the local server (glibc); a file this host could not read (EMFILE) fails the query.
   */
  const settings = async () => {
    let file: ResolvConf = {servers: [...(options.servers ?? [])]}
    if (options.servers === undefined) {
      if (conf === undefined || now() - conf.read > RESOLV_CONF_MAX_AGE_MS) {
        const read = process.getBuiltinModule('node:fs/promises').readFile(options.resolvConf ?? RESOLV_CONF, 'latin1')
        const value = read.catch((error: unknown) => (errorCode(error) === 'ENOENT' ? '' : Promise.reject(new DnsError(errorCode(error))))).then(parseResolvConf)
        const entry = {read: now(), value}
        value.catch(() => conf === entry && (conf = undefined)) // a failed read is not kept
        conf = entry
      }
      file = await conf.value
    }
    return {servers: file.servers, timeoutMs: options.timeoutMs ?? file.timeoutMs ?? DNS_TIMEOUT_MS, attempts: options.attempts ?? file.attempts ?? DNS_ATTEMPTS}
  }

  /** A socket slot freed: the tries waiting for one look again. */
  const socketFreed = () => {
    const waiting = socketWaiters
    socketWaiters = []
    for (const wake of waiting) wake()
  }
  const waitForSocket = () => new Promise<void>((resolve) => socketWaiters.push(resolve))

  /** Close a channel once it is retired and has no query left. */
  const closeIfDone = (channel: Channel) => {
    if (!channel.retired || channel.pending.size > 0 || !channels.has(channel)) return
    channels.delete(channel)
    const key = hostPort(channel.server.address, channel.server.port)
    if (current.get(key) === channel) current.delete(key)
    try {
      channel.socket.close()
    } catch {
      // Already closed (its bind failed).
    }
    socketFreed()
  }

  /** Every pending try of a channel fails (the socket failed); the channel is closed. */
  const failChannel = (channel: Channel, code: string) => {
    channel.retired = true
    for (const id of [...channel.pending.keys()]) settle(channel, id, local(code))
    closeIfDone(channel)
  }

  /** One try on a channel ends: its ID is free again, its timer cleared; a drained retired channel closes. */
  const settle = (channel: Channel, id: number, exchange: Exchange) => {
    const entry = channel.pending.get(id)
    if (!entry) return
    channel.pending.delete(id)
    clearTimeout(entry.timer)
    entry.done(exchange)
    closeIfDone(channel)
  }

  /** A new UDP socket connected to `server` (a fresh random source port). */
  const openChannel = (server: HostPort, dns: DnsPacket): Channel => {
    const dgram = process.getBuiltinModule('node:dgram')
    const socket = dgram.createSocket(server.address.includes(':') ? 'udp6' : 'udp4')
    let connected: (code?: string) => void = () => {}
    const ready = new Promise<string | undefined>((resolve) => (connected = resolve))
    const channel: Channel = {socket, server, ready, pending: new Map(), sent: 0, retired: false}
    socket.on('error', (error) => {
      connected(errorCode(error)) // bind or connect failed (EMFILE…), or later a receive error (ECONNREFUSED)
      failChannel(channel, errorCode(error))
    })
    socket.on('message', (message, from) => {
      if (from.address === server.address && from.port === server.port) answered(channel, message, dns)
    })
    channels.add(channel)
    try {
      socket.connect(server.port, server.address, () => {
        socket.unref()
        connected(undefined)
      })
    } catch (error) {
      connected(errorCode(error))
      channel.retired = true
      closeIfDone(channel)
    }
    return channel
  }

  /** The channel for the next query to `server`: the current one, or a fresh one after rotateAfter queries. */
  const channelFor = async (server: HostPort, dns: DnsPacket): Promise<Channel | undefined> => {
    const key = hostPort(server.address, server.port)
    while (!closed) {
      const channel = current.get(key)
      const udpRoom = channels.size < limits.sockets - limits.tcp
      if (channel && !channel.retired && (channel.sent < limits.rotateAfter || !udpRoom)) return channel
      if (udpRoom) {
        if (channel) {
          channel.retired = true
          closeIfDone(channel)
        }
        const fresh = openChannel(server, dns)
        current.set(key, fresh)
        return fresh
      }
      await waitForSocket()
    }
    return undefined
  }

  /** An incoming datagram: dropped unless it is a well-formed response to a pending query of this channel. */
  const answered = (channel: Channel, message: Buffer, dns: DnsPacket) => {
    if (message.length < 12) return
    const entry = channel.pending.get(message.readUInt16BE(0))
    if (!entry) return
    let packet: Packet
    try {
      packet = dns.decode(message)
    } catch {
      // Malformed. A truncated answer may be cut mid-record: its header still says TC.
      if ((message.readUInt16BE(2) & 0x8200) !== 0x8200) return
      packet = {id: message.readUInt16BE(0), type: 'response', flags: TRUNCATED, questions: [{name: entry.query.name, type: entry.query.type, class: 'IN'}]}
    }
    if (isResponseTo(packet, entry.query)) settle(channel, packet.id!, {kind: 'response', packet})
  }

  /** One try over UDP: a random ID unused on the channel, the try's own timer. */
  const udpExchange = async (server: HostPort, query: Query, timeoutMs: number, dns: DnsPacket): Promise<Exchange> => {
    const channel = await channelFor(server, dns)
    if (!channel) return {kind: 'failed', code: 'ECANCELLED'}
    const id = freeId(channel.pending)
    channel.sent++
    const exchange = new Promise<Exchange>((done) => {
      const timer = setTimeout(() => settle(channel, id, {kind: 'failed', code: 'ETIMEOUT'}), timeoutMs)
      channel.pending.set(id, {query, done, timer})
    })
    const failed = await channel.ready
    if (failed !== undefined) settle(channel, id, local(failed))
    else if (channel.pending.has(id)) channel.socket.send(encodeQuery(dns, id, query, true), (error) => error && settle(channel, id, local(errorCode(error))))
    return exchange
  }

  /** One try over TCP (after a truncated UDP answer): one connection per query, within the caps. */
  const tcpExchange = async (server: HostPort, query: Query, timeoutMs: number, dns: DnsPacket): Promise<Exchange> => {
    while (tcpSockets.size >= limits.tcp) {
      if (closed) return {kind: 'failed', code: 'ECANCELLED'}
      await waitForSocket()
    }
    const net = process.getBuiltinModule('node:net')
    const socket = net.connect({host: server.address, port: server.port})
    socket.unref()
    tcpSockets.add(socket)
    const id = freeId(new Map())
    return new Promise<Exchange>((resolve) => {
      const chunks: Buffer[] = []
      let length = 0
      const finish = (exchange: Exchange) => {
        clearTimeout(timer)
        socket.destroy()
        if (tcpSockets.delete(socket)) socketFreed()
        resolve(exchange)
      }
      const timer = setTimeout(() => finish({kind: 'failed', code: 'ETIMEOUT'}), timeoutMs)
      socket.on('error', (error) => finish(local(errorCode(error))))
      socket.on('close', () => finish({kind: 'failed', code: 'ECONNRESET'}))
      socket.on('connect', () => socket.write(encodeQuery(dns, id, query, false)))
      socket.on('data', (data: Buffer) => {
        chunks.push(data)
        length += data.length
        const whole = Buffer.concat(chunks, length)
        if (whole.length < 2 || whole.length < 2 + whole.readUInt16BE(0)) return
        const packet = decodeOrUndefined(dns, whole.subarray(2, 2 + whole.readUInt16BE(0)))
        finish(packet && packet.id === id && isResponseTo(packet, query) ? {kind: 'response', packet} : {kind: 'failed', code: 'EBADRESP'})
      })
    })
  }

  /** A query's tries: round after round over the servers; a truncated answer is asked again over TCP. */
  const resolveQuery = async (query: Query): Promise<Outcome> => {
    const dns = await codec()
    const {servers, timeoutMs, attempts} = await settings()
    let last = 'ETIMEOUT'
    const tries = attempts * servers.length
    for (let n = 0; n < tries && !query.abandoned && !closed; n++) {
      const server = servers[n % servers.length]
      const udp = await udpExchange(server, query, timeoutMs, dns)
      const truncated = udp.kind === 'response' && ((udp.packet.flags ?? 0) & TRUNCATED) !== 0
      const exchange = truncated && !query.abandoned && !closed ? await tcpExchange(server, query, timeoutMs, dns) : udp
      if (exchange.kind === 'local') return {error: new DnsError(exchange.code)}
      if (exchange.kind === 'failed') {
        last = exchange.code
        continue
      }
      const outcome = interpret(exchange.packet, query)
      // A server failure or refusal: the next server, if this round has one.
      if (outcome.error && ['ESERVFAIL', 'EREFUSED'].includes(outcome.error.code) && (n % servers.length) + 1 < servers.length) continue
      return outcome
    }
    return {error: new DnsError(query.abandoned || closed ? 'ECANCELLED' : last)}
  }

  /** Start queries while there is an in-flight slot. */
  const pump = () => {
    while (queue.length > 0 && inFlight < limits.inFlight) queue.shift()!()
  }
  const start = (query: Query) => {
    if (query.abandoned) return
    inFlight++
    void resolveQuery(query)
      .catch((error: unknown) => ({error: new DnsError(errorCode(error))}))
      .then((outcome) => {
        inFlight--
        query.deliver(outcome)
        pump()
      })
  }

  return {
    query<T extends QueryType>(name: string, type: T, signal?: AbortSignal): Promise<DnsAnswer<DataOf<T>>> {
      return new Promise((resolve, reject) => {
        const query: Query = {name: canonicalName(name), type, abandoned: false, deliver: () => {}}
        const leave = () => {
          query.abandoned = true
          query.deliver = () => {}
          reject(new DnsError('ECANCELLED'))
        }
        if (closed || signal?.aborted) return leave()
        signal?.addEventListener('abort', leave, {once: true})
        query.deliver = (outcome) => {
          signal?.removeEventListener('abort', leave)
          if (outcome.error) reject(outcome.error)
          else resolve(outcome.answer as DnsAnswer<DataOf<T>>)
        }
        queue.push(() => start(query))
        pump()
      })
    },
    stats: () => ({udp: channels.size, tcp: tcpSockets.size, inFlight, queued: queue.length}),
    async close() {
      closed = true
      for (const run of queue.splice(0)) run()
      const closing = [...channels].map((channel) => new Promise((resolve) => channel.socket.once('close', resolve)))
      for (const channel of channels) failChannel(channel, 'ECANCELLED')
      for (const socket of tcpSockets) socket.destroy()
      socketFreed()
      await Promise.all(closing)
    },
  }
}

/** A random 16-bit ID not in use in `pending` (RFC 5452: unpredictable IDs). */
function freeId(pending: ReadonlyMap<number, unknown>): number {
  const {randomInt} = process.getBuiltinModule('node:crypto')
  for (;;) {
    const id = randomInt(65_536)
    if (!pending.has(id)) return id
  }
}

/** The query datagram: recursion desired; over UDP an EDNS0 OPT record announces EDNS_UDP_SIZE. */
function encodeQuery(dns: DnsPacket, id: number, query: Query, udp: boolean): Buffer {
  const packet: Packet = {
    id,
    type: 'query',
    flags: dns.RECURSION_DESIRED,
    questions: [{name: query.name, type: query.type, class: 'IN'}],
    additionals: udp ? [{type: 'OPT', name: '.', udpPayloadSize: EDNS_UDP_SIZE} as Answer] : [],
  }
  return udp ? dns.encode(packet) : dns.streamEncode(packet)
}

function decodeOrUndefined(dns: DnsPacket, message: Buffer): Packet | undefined {
  try {
    return dns.decode(message)
  } catch {
    return undefined
  }
}

/** A response (QR set) whose one question is the query's: name (case-insensitive), type, class. */
function isResponseTo(packet: Packet, query: Query): boolean {
  const question: Question | undefined = packet.questions?.[0]
  return (
    packet.type === 'response' &&
    packet.questions?.length === 1 &&
    question !== undefined &&
    canonicalName(question.name) === query.name &&
    question.type === query.type &&
    (question.class ?? 'IN') === 'IN'
  )
}

/** Response codes (RFC 1035 §4.1.1) as error codes, c-ares's names. */
const RCODE_NXDOMAIN = 3
const RCODE_ERRORS: Record<number, string> = {1: 'EFORMERR', 2: 'ESERVFAIL', 4: 'ENOTIMP', 5: 'EREFUSED'}

/**
 * What a response says: the records of the type asked whose owner is the name asked or the
 * current target of its CNAME chain (followed at most MAX_CNAME_HOPS hops), with the least
 * TTL of the records used; other records are ignored. NXDOMAIN, no data and the other rcodes
 * are errors; a negative answer's TTL is its SOA's (the lesser of the SOA TTL and MINIMUM).
 */
export function interpret(packet: Packet, query: {name: string; type: QueryType}): Outcome {
  const answers = ((packet.answers ?? []) as Rr[]).filter((record) => record.class === undefined || record.class === 'IN')
  const ttls: number[] = []
  let owner = canonicalName(query.name)
  for (let hops = 0; ; hops++) {
    const alias = answers.find((record) => record.type === 'CNAME' && canonicalName(record.name) === owner)
    if (!alias) break
    if (hops === MAX_CNAME_HOPS) return {error: new DnsError('EBADRESP')}
    ttls.push(alias.ttl ?? 0)
    owner = canonicalName(alias.data as string)
  }
  const rcode = (packet.flags ?? 0) & 0xf
  const negative = () => {
    const soa = ((packet.authorities ?? []) as Rr[]).find((record) => record.type === 'SOA')
    const minimum = soa && (soa.data as {minimum?: number}).minimum
    return soa ? Math.min(soa.ttl ?? 0, minimum ?? 0, ...ttls) : undefined
  }
  if (rcode === RCODE_NXDOMAIN) return {error: new DnsError('ENOTFOUND', negative())}
  if (rcode !== 0) return {error: new DnsError(RCODE_ERRORS[rcode] ?? 'EBADRESP')}
  const used = answers.filter((record) => record.type === query.type && canonicalName(record.name) === owner && validData(record))
  if (used.length === 0) return {error: new DnsError('ENODATA', negative())}
  const records = used.map((record) => (record.type === 'MX' ? {...(record.data as MxData), exchange: presentation((record.data as MxData).exchange)} : record.data))
  return {answer: {records, ttl: Math.min(...ttls, ...used.map((record) => record.ttl ?? 0))}}
}

/** Characters a master file escapes with a backslash (RFC 1035 §5.1; c-ares escapes the same). */
const RESERVED = new Set(['"', ';', '\\', '(', ')', '@', '$'])

/**
 * A name as text: octets outside printable ASCII as `\DDD`, reserved characters after a
 * backslash (as c-ares gives names), so that junk in DNS data is visible and never taken for a host name.
 */
export function presentation(name: string): string {
  if (/^[\x20-\x7e]*$/.test(name) && ![...RESERVED].some((c) => name.includes(c))) return name
  let text = ''
  for (const octet of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(octet)
    text += octet < 0x20 || octet >= 0x7f ? `\\${String(octet).padStart(3, '0')}` : RESERVED.has(c) ? `\\${c}` : c
  }
  return text
}

/** A resource record as dns-packet decodes it (its union type, OPT included, spelled loosely). */
interface Rr {
  readonly type: string
  readonly name: string
  readonly class?: string
  readonly ttl?: number
  readonly data?: unknown
}

/** The data of an A, AAAA or MX record as dns-packet decodes it: an address of its family, or preference and exchange. */
function validData(record: Rr): boolean {
  const data = record.data as unknown
  if (record.type === 'MX') return typeof (data as MxData)?.preference === 'number' && typeof (data as MxData)?.exchange === 'string'
  return typeof data === 'string' && literalFamily(data) === (record.type === 'A' ? 4 : 6)
}
