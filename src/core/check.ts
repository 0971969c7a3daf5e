// One run: resolve, select (§3), probe the candidates (§4, §5), decide (§6).
import {setMaxListeners} from 'node:events'

import type {AttemptFn} from './attempt.js'
import type {OutcomeCache} from './cache.js'
import {FatalError} from './errors.js'
import {familyOf, type Entry} from './grammar.js'
import {raceAddresses, type AttemptRecord, type RaceResult} from './race.js'
import type {Lookup, Resolver} from './resolve.js'
import {isLocalHost, selectCandidates, type Selection, type Stop} from './selection.js'

export interface CheckOptions {
  readonly entries: readonly Entry[]
  /** `--stop` as parsed: an address literal (normalised) or a name to resolve. */
  readonly stop?: {address: string} | {name: string}
  /** Per-server budget in ms; 0 = no limit. */
  readonly timeoutMs: number
  readonly port: number
  readonly attemptDelayMs: number
  /** `-4` / `-6`: probe only this family. */
  readonly family?: 4 | 6
  readonly sequential: boolean
}

export interface CheckDeps {
  readonly resolver: Resolver
  readonly attempt: AttemptFn
  /** Monotonic milliseconds. */
  readonly now: () => number
  readonly cache?: OutcomeCache
  /** Aborting it (SIGINT/SIGTERM) tears every attempt down. */
  readonly signal?: AbortSignal
  readonly onEvent?: (event: TraceEvent) => void
}

export interface LookupRecord extends Lookup {
  readonly startMs: number
  readonly endMs: number
}

export interface ServerRecord {
  readonly entry: Entry
  /** Addresses tried (after `-4`/`-6`). */
  readonly addresses: string[]
  readonly attempts: AttemptRecord[]
  readonly available: boolean
  /** Why it is unavailable when no attempt says so (lookup failed, wrong family, budget). */
  readonly note?: string
}

export interface Report {
  readonly entries: readonly Entry[]
  readonly stop?: {given: string; addresses: string[]}
  readonly selection: Selection
  readonly servers: ServerRecord[]
  /** Every name lookup made (candidates or not), by entry. */
  readonly lookups: ReadonlyMap<Entry, LookupRecord>
  /** The server printed, if any. */
  readonly winner?: Entry
  readonly exitCode: 0 | 1
  readonly elapsedMs: number
}

export type TraceEvent =
  | {type: 'entries'; ms: number; entries: readonly Entry[]}
  | {type: 'stop'; ms: number; given: string; addresses: string[]}
  | {type: 'lookup'; ms: number; host: string; lookup: LookupRecord}
  | {type: 'selection'; ms: number; selection: Selection}
  | {type: 'attempt-start'; ms: number; server: string; address: string; port: number}
  | {type: 'attempt'; ms: number; server: string; record: AttemptRecord}
  | {type: 'server'; ms: number; server: string; available: boolean; note?: string}
  | {type: 'decision'; ms: number; winner?: string; exitCode: 0 | 1}

/**
 * A budget: aborts with 'timeout' after `ms` (never if 0), or with the parent's reason.
 * `release()` ends it: whatever it still governs is torn down as 'cancelled'.
 */
function budget(ms: number, parent: AbortSignal): {signal: AbortSignal; release: () => void} {
  const controller = new AbortController()
  const onParent = () => controller.abort(parent.reason)
  if (parent.aborted) onParent()
  parent.addEventListener('abort', onParent, {once: true})
  const timer = ms > 0 ? setTimeout(() => controller.abort('timeout'), ms) : undefined
  return {
    signal: controller.signal,
    release() {
      clearTimeout(timer)
      parent.removeEventListener('abort', onParent)
      controller.abort('cancelled')
    },
  }
}

/** Resolve within `signal`; a budget that runs out (or a run that ends) is a dns-error. */
function lookupWithin(resolver: Resolver, name: string, signal: AbortSignal): Promise<Lookup> {
  const cut = (): Lookup => ({outcome: 'dns-error', addresses: [], error: signal.reason === 'timeout' ? 'ETIMEOUT' : 'cancelled'})
  if (signal.aborted) return Promise.resolve(cut())
  return new Promise((resolve) => {
    const onAbort = () => resolve(cut())
    signal.addEventListener('abort', onAbort, {once: true})
    void resolver(name, signal).then((lookup) => {
      signal.removeEventListener('abort', onAbort)
      resolve(lookup)
    })
  })
}

export async function check(options: CheckOptions, deps: CheckDeps): Promise<Report> {
  const t0 = deps.now()
  const elapsed = () => Math.round(deps.now() - t0)
  const emit = (event: TraceEvent) => deps.onEvent?.(event)
  const all = new AbortController()
  const outer = deps.signal ? AbortSignal.any([deps.signal, all.signal]) : all.signal
  // Every server's budget listens to it: one listener per entry is expected, not a leak.
  setMaxListeners(0, outer)
  emit({type: 'entries', ms: elapsed(), entries: options.entries})

  // Every name is resolved at once, while --stop is: selection needs the addresses, probing reuses them.
  const budgets = new Map<Entry, ReturnType<typeof budget>>()
  const lookups = new Map<Entry, Promise<LookupRecord>>()
  for (const entry of options.entries) {
    const b = budget(options.timeoutMs, outer)
    budgets.set(entry, b)
    const startMs = elapsed()
    const pending: Promise<Lookup> =
      entry.kind === 'name'
        ? lookupWithin(deps.resolver, entry.host, b.signal)
        : Promise.resolve({outcome: 'resolved', addresses: [entry.host]})
    lookups.set(
      entry,
      pending.then((lookup) => {
        const record = {...lookup, startMs, endMs: elapsed()}
        if (entry.kind === 'name') emit({type: 'lookup', ms: record.endMs, host: entry.name, lookup: record})
        return record
      }),
    )
  }

  /** Ends every budget and waits for the lookups, so that nothing of the run outlives it. */
  const endLookups = async () => {
    for (const b of budgets.values()) b.release()
    all.abort('cancelled')
    return new Map(await Promise.all([...lookups].map(async ([entry, pending]) => [entry, await pending] as const)))
  }

  // --stop: its addresses, or exit 2 at once.
  let stop: Stop | undefined
  let stopReport: Report['stop']
  if (options.stop) {
    if ('address' in options.stop) {
      stop = {addresses: [options.stop.address]}
    } else {
      const name = options.stop.name.toLowerCase().replace(/\.$/, '')
      const b = budget(options.timeoutMs, outer)
      const lookup = await lookupWithin(deps.resolver, options.stop.name, b.signal)
      b.release()
      if (lookup.outcome !== 'resolved') {
        await endLookups()
        throw new FatalError(`cannot resolve --stop "${options.stop.name}": ${lookup.outcome}${lookup.error ? ` (${lookup.error})` : ''}`)
      }
      stop = {name, addresses: lookup.addresses}
    }
    stopReport = {given: 'address' in options.stop ? options.stop.address : options.stop.name, addresses: [...stop.addresses]}
    emit({type: 'stop', ms: elapsed(), ...stopReport})
  }

  let selection: Selection
  if (stop) {
    const resolved = new Map<Entry, LookupRecord>()
    for (const entry of options.entries) resolved.set(entry, await lookups.get(entry)!)
    selection = selectCandidates(options.entries, (entry) => isLocalHost(entry, resolved.get(entry)!.addresses, stop))
  } else {
    selection = selectCandidates(options.entries, () => false)
  }
  emit({type: 'selection', ms: elapsed(), selection})
  for (const entry of options.entries) if (!selection.candidates.includes(entry)) budgets.get(entry)!.release()

  const probe = async (entry: Entry, signal: AbortSignal): Promise<ServerRecord> => {
    const lookup = await lookups.get(entry)!
    const addresses = lookup.addresses.filter((address) => !options.family || familyOf(address) === options.family)
    let note: string | undefined
    if (lookup.outcome !== 'resolved') note = `lookup ${lookup.outcome}`
    else if (addresses.length === 0) note = `no IPv${options.family} address`
    let result: RaceResult = {attempts: []}
    if (!note && signal.aborted) note = signal.reason === 'cancelled' ? 'cancelled' : 'budget ran out'
    if (!note) {
      result = await raceAddresses(addresses, {
        port: options.port,
        attemptDelayMs: options.attemptDelayMs,
        signal,
        attempt: deps.attempt,
        elapsed,
        remembered: deps.cache ? (a, p) => deps.cache!.lookup(a, p) : undefined,
        onAttemptStart: (address, port) => emit({type: 'attempt-start', ms: elapsed(), server: entry.name, address, port}),
        onAttemptEnd: (record) => {
          deps.cache?.note(record)
          emit({type: 'attempt', ms: record.endMs, server: entry.name, record})
        },
      })
    }
    const available = result.winner !== undefined
    if (!available && !note && signal.reason === 'timeout') note = 'budget ran out'
    emit({type: 'server', ms: elapsed(), server: entry.name, available, note})
    return {entry, addresses, attempts: result.attempts, available, note}
  }

  const servers: ServerRecord[] = []
  let winner: Entry | undefined
  if (options.sequential) {
    for (const entry of selection.candidates) {
      const lookup = await lookups.get(entry)!
      budgets.get(entry)!.release()
      const b = budget(options.timeoutMs > 0 ? Math.max(1, options.timeoutMs - (lookup.endMs - lookup.startMs)) : 0, outer)
      const server = await probe(entry, b.signal)
      b.release()
      servers.push(server)
      if (server.available) {
        winner = entry
        break
      }
    }
  } else {
    const probes = selection.candidates.map((entry) =>
      probe(entry, budgets.get(entry)!.signal).then((server) => {
        servers.push(server)
        return server
      }),
    )
    // The first available server to answer wins; the others are torn down.
    winner = await new Promise<Entry | undefined>((resolve) => {
      for (const p of probes) void p.then((server) => server.available && resolve(server.entry))
      void Promise.all(probes).then(() => resolve(undefined))
    })
    all.abort('cancelled')
    await Promise.all(probes)
  }
  const lookupRecords = await endLookups()
  for (const entry of options.entries) if (entry.kind !== 'name') lookupRecords.delete(entry)

  const exitCode = winner ? 1 : 0
  emit({type: 'decision', ms: elapsed(), winner: winner?.name, exitCode})
  servers.sort((a, b) => a.entry.index - b.entry.index)
  return {entries: options.entries, stop: stopReport, selection, servers, lookups: lookupRecords, winner, exitCode, elapsedMs: elapsed()}
}
