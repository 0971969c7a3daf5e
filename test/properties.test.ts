// Property tests (fast-check): the grammar never crashes and round-trips; selection and
// de-duplication agree with small reference models written straight from SPEC §2/§3
// (not from src/core/selection.ts); any greeting, however split, gets the verdict of its line.
import fc from 'fast-check'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {attemptSmtp} from '../src/core/attempt.js'
import {UsageError} from '../src/core/errors.js'
import {parseServerList, parseServerWord, type Entry} from '../src/core/grammar.js'
import {MAX_LINE_OCTETS, classifyGreeting, scanFirstLine} from '../src/core/greeting.js'
import {isLocalHost, selectCandidates} from '../src/core/selection.js'
import {startSmtp} from '../fixtures/smtp.js'

/** Characters the grammar cares about, to hit its corners more often than random text would. */
const GRAMMAR_CHARS = [...'0123456789abcdefxABCDEFX:.[]-%_ /@'].map((c) => fc.constant(c))
const word = fc.oneof(
  fc.string(),
  fc.string({unit: 'binary', maxLength: 40}),
  fc.string({unit: fc.oneof(...GRAMMAR_CHARS), maxLength: 40}),
  fc.tuple(fc.nat({max: 99_999}), fc.string({unit: fc.oneof(...GRAMMAR_CHARS), maxLength: 30})).map(([p, rest]) => `${p}:${rest}`),
  fc.tuple(fc.nat({max: 70_000}), fc.ipV6()).map(([p, a]) => `${p}:${a}`),
)

/** A valid host name: labels of 1–63 letters/digits/inner hyphens, last label not all digits. */
const label = fc.stringMatching(/^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?$/)
const hostname = fc
  .tuple(fc.array(label, {minLength: 1, maxLength: 4}), fc.boolean())
  .map(([labels, dot]) => labels.join('.') + (dot ? '.' : ''))
  .filter((name) => !/^\d+$/.test(name.replace(/\.$/, '').split('.').at(-1)!))
  // Words inet_aton(3) reads as an address (`0x7f000001`, `0x7f.1`) are refused as names.
  .filter((name) => !name.replace(/\.$/, '').split('.').every((l) => /^(?:0x[0-9a-f]*|\d+)$/i.test(l)))
const prio = fc.option(fc.integer({min: 0, max: 65_535}), {nil: undefined})
/** A valid server word and the priority it carries. */
const validWord = fc.oneof(
  fc.tuple(prio, fc.oneof(hostname, fc.ipV4())).map(([p, host]) => ({prio: p, word: p === undefined ? host : `${p}:${host}`})),
  fc.tuple(prio, fc.ipV6(), fc.boolean()).map(([p, host, bracket]) => ({
    prio: p,
    word: p !== undefined ? `${p}:[${host}]` : bracket ? `[${host}]` : host,
  })),
)
const printed = (entry: Entry) => (entry.prio === undefined ? entry.name : `${entry.prio}:${entry.name}`)

describe('grammar (SPEC §2)', () => {
  it('random words never crash parseServerWord: an entry or a UsageError, nothing else', () => {
    fc.assert(
      fc.property(word, (w) => {
        try {
          const entry = parseServerWord(w)
          expect(['name', 'ipv4', 'ipv6']).toContain(entry.kind)
        } catch (error) {
          if (!(error instanceof UsageError)) throw error
          expect(error.message).toMatch(/^bad server /)
        }
      }),
      {numRuns: 3000},
    )
  })

  it('random word lists never crash parseServerList', () => {
    fc.assert(
      fc.property(fc.array(word, {maxLength: 8}), (words) => {
        try {
          parseServerList(words)
        } catch (error) {
          if (!(error instanceof UsageError)) throw error
        }
      }),
      {numRuns: 1000},
    )
  })

  it('any valid word parses, keeps its priority, and its entry printed (prio:name) re-parses to the same entry', () => {
    fc.assert(
      fc.property(validWord, ({word: w, prio: p}) => {
        const entry = parseServerWord(w)
        expect(entry.prio).toBe(p)
        expect(parseServerWord(printed(entry))).toEqual(entry)
      }),
      {numRuns: 2000},
    )
  })

  it('whatever random word parses also round-trips', () => {
    fc.assert(
      fc.property(word, (w) => {
        let entry: Entry
        try {
          entry = parseServerWord(w)
        } catch {
          return
        }
        expect(parseServerWord(printed(entry))).toEqual(entry)
      }),
      {numRuns: 3000},
    )
  })

  it('the same host twice is kept once, at its first position, with its lowest priority (reference model)', () => {
    const small = fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c', 'A', 'b.'), fc.option(fc.integer({min: 0, max: 5}), {nil: undefined})), {maxLength: 8})
    fc.assert(
      fc.property(small, (pairs) => {
        const words = pairs.map(([host, p]) => (p === undefined ? host : `${p}:${host}`))
        // Model: host compared case- and trailing-dot-insensitively; first position; lowest priority given.
        const model = new Map<string, {name: string; prio?: number}>()
        for (const [host, p] of pairs) {
          const key = host.toLowerCase().replace(/\.$/, '')
          const seen = model.get(key)
          if (!seen) model.set(key, {name: host, prio: p})
          else if (p !== undefined && (seen.prio === undefined || p < seen.prio)) seen.prio = p
        }
        const entries = parseServerList(words)
        expect(entries.map((e) => ({name: e.name, prio: e.prio}))).toEqual([...model.values()])
        expect(entries.map((e) => e.index)).toEqual(entries.map((_, i) => i))
      }),
      {numRuns: 1000},
    )
  })
})

/**
 * SPEC §3, read literally, over entries in list order with a local-host flag each;
 * `mustFind`: SPEC §10 (--mx and serve, with an identity of the local host).
 */
function referenceCandidates(entries: readonly {name: string; prio?: number}[], local: readonly boolean[], mustFind = false): string[] {
  const localIndexes = entries.map((_, i) => i).filter((i) => local[i])
  // §10: "if no MX entry is the local host … nothing is known to be more preferred than this host: exit 0"
  if (localIndexes.length === 0 && mustFind) return []
  // "Without --stop, or when no entry is the local host: every entry is a candidate."
  if (localIndexes.length === 0) return entries.map((e) => e.name)
  const firstLocal = localIndexes[0]
  const localPrios = localIndexes.map((i) => entries[i].prio).filter((p): p is number => p !== undefined)
  if (localPrios.length > 0) {
    // "the candidates are the entries with a priority strictly less than P, wherever they
    // stand in the list, and the entries without a priority that stand before the first
    // local-host entry" (P the lowest priority of the local-host entries).
    const P = Math.min(...localPrios)
    return entries
      .filter((e, i) => !local[i] && (e.prio === undefined ? i < firstLocal : e.prio < P))
      .map((e) => e.name)
  }
  // "if it has no priority: the candidates are the entries before it in list order."
  return entries.slice(0, firstLocal).map((e) => e.name)
}

describe('selection (SPEC §3) against a reference model', () => {
  const list = fc.array(fc.tuple(fc.option(fc.integer({min: 0, max: 4}), {nil: undefined}), fc.boolean()), {maxLength: 9})

  it('selectCandidates picks what SPEC §3 (and §10 when the local host must be found) says, in list order', () => {
    fc.assert(
      fc.property(list, fc.boolean(), (items, mustFind) => {
        const words = items.map(([p], i) => (p === undefined ? `h${i}.test` : `${p}:h${i}.test`))
        const local = items.map(([, isLocal]) => isLocal)
        const entries = parseServerList(words)
        const selection = selectCandidates(entries, (entry) => local[entry.index], mustFind)
        expect(selection.candidates.map((e) => e.name)).toEqual(referenceCandidates(entries, local, mustFind))
        expect(selection.localNotFound ?? false).toBe(mustFind && items.length > 0 && !local.includes(true))
        expect(selection.local.map((e) => e.name)).toEqual(entries.filter((_, i) => local[i]).map((e) => e.name))
      }),
      {numRuns: 3000},
    )
  })

  it('isLocalHost: same name as any identity (case, trailing dot) or an address shared with any identity', () => {
    const pool = ['192.0.2.1', '192.0.2.2', '2001:db8::1']
    const arb = fc.record({
      host: fc.constantFrom('mx.test', 'MX.test.', 'other.test'),
      addrs: fc.subarray(pool),
      stopNames: fc.subarray(['mx.test', 'other.test', 'third.test']),
      stopAddrs: fc.subarray(pool),
    })
    fc.assert(
      fc.property(arb, ({host, addrs, stopNames, stopAddrs}) => {
        const entry = parseServerWord(host)
        const model = stopNames.includes(host.toLowerCase().replace(/\.$/, '')) || addrs.some((a) => stopAddrs.includes(a))
        expect(isLocalHost(entry, addrs, {names: stopNames, addresses: stopAddrs})).toBe(model)
      }),
      {numRuns: 500},
    )
  })
})

describe('greeting: any first line, however split into segments, gets the verdict of its line', () => {
  /** Outcome SPEC §4 gives a complete first line (the server then stays silent). */
  function expectedOutcome(bytes: Buffer): string {
    const scan = scanFirstLine(bytes.subarray(0, MAX_LINE_OCTETS + 2))
    if (scan.kind !== 'line') return 'not-smtp'
    return classifyGreeting(scan.line).kind
  }

  let server: Awaited<ReturnType<typeof startSmtp>>
  let script: {bytes: Buffer; cuts: number[]} = {bytes: Buffer.alloc(0), cuts: []}
  beforeAll(async () => {
    server = await startSmtp({
      host: '127.0.0.1',
      greet: (socket) => {
        socket.setNoDelay(true)
        const {bytes, cuts} = script
        let at = 0
        const send = (i: number) => {
          if (socket.destroyed) return
          const end = i < cuts.length ? cuts[i] : bytes.length
          socket.write(bytes.subarray(at, end))
          at = end
          if (i < cuts.length) setTimeout(() => send(i + 1), 2)
        }
        send(0)
      },
    })
  })
  afterAll(() => server.close())

  const reply = fc.tuple(fc.constantFrom('220', '221', '421', '554', '22', '2200', '600', '220\0', ''), fc.constantFrom(' ', '-', '', '\t', '\r'), fc.string({unit: 'binary-ascii', maxLength: 40}))
  const line = fc.oneof(
    reply.map(([code, sep, text]) => Buffer.from(`${code}${sep}${text.replace(/\n/g, '')}`, 'latin1')),
    fc.uint8Array({maxLength: 600}).map((a) => Buffer.from(a.map((b) => (b === 0x0a ? 0x20 : b)))),
  )
  const ending = fc.constantFrom('\r\n', '\n')

  it('attemptSmtp on real sockets agrees with scanFirstLine + classifyGreeting', async () => {
    await fc.assert(
      fc.asyncProperty(line, ending, fc.array(fc.nat(), {maxLength: 3}), async (first, eol, rawCuts) => {
        const bytes = Buffer.concat([first, Buffer.from(eol)])
        script = {bytes, cuts: [...new Set(rawCuts.map((c) => c % bytes.length))].sort((a, b) => a - b)}
        const result = await attemptSmtp('127.0.0.1', server.port, AbortSignal.timeout(3000))
        expect(result.outcome).toBe(expectedOutcome(bytes))
      }),
      {numRuns: 150},
    )
  })
})
