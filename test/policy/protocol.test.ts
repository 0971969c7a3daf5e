// The policy protocol, pure: the request parser against a whole-buffer reference parser
// written from SPEC §11 (not from protocol.ts), what a request asks, and the reply writer.
import fc from 'fast-check'
import {describe, expect, it} from 'vitest'

import {UsageError} from '../../src/core/errors.js'
import {parseListen, parseSocketMode} from '../../src/policy/listen.js'
import {
  formatReply,
  question,
  recipientDomain,
  rememberingReaders,
  RequestParser,
  type Attributes,
  type TroubleKind,
} from '../../src/policy/protocol.js'

/**
 * SPEC §11 read literally, on the whole stream at once: lines end at LF (a CR before it is
 * dropped); an empty line ends a request; trouble is a NUL, a line over 8192 octets, a
 * request over 65536 octets (line endings included) or 1000 attributes, a line with no
 * `=`, an empty line with no attribute before it (not a request), or a stream ending
 * inside a request. The last value of a repeated name counts.
 */
function reference(stream: Buffer): {requests: Array<Map<string, string>>; trouble: boolean} {
  const requests: Array<Map<string, string>> = []
  const pieces: Buffer[] = []
  for (let start = 0; ; ) {
    const lf = stream.indexOf(0x0a, start)
    if (lf < 0) {
      pieces.push(stream.subarray(start))
      break
    }
    pieces.push(stream.subarray(start, lf))
    start = lf + 1
  }
  const tail = pieces.pop()!
  let current = new Map<string, string>()
  let count = 0
  let size = 0
  for (const raw of pieces) {
    size += raw.length + 1
    const line = raw.at(-1) === 0x0d ? raw.subarray(0, -1) : raw
    if (raw.includes(0) || line.length > 8192 || size > 65536) return {requests, trouble: true}
    if (line.length === 0) {
      if (count === 0) return {requests, trouble: true}
      requests.push(current)
      current = new Map()
      count = 0
      size = 0
      continue
    }
    const eq = line.indexOf(0x3d)
    if (eq < 0 || ++count > 1000) return {requests, trouble: true}
    current.set(line.subarray(0, eq).toString('utf8'), line.subarray(eq + 1).toString('utf8'))
  }
  return {requests, trouble: tail.length > 0 || size > 0}
}

/** The implementation fed `chunks` one by one (at most `limit` requests a push), then the end. */
function parseChunks(chunks: readonly Buffer[], limit = Infinity): {requests: Attributes[]; trouble?: TroubleKind} {
  const parser = new RequestParser()
  const requests: Attributes[] = []
  for (const chunk of chunks) {
    for (let rest: Uint8Array | undefined = chunk; rest !== undefined; ) {
      const step = parser.push(rest, limit)
      expect(step.requests.length).toBeLessThanOrEqual(limit)
      requests.push(...step.requests)
      if (step.trouble) return {requests, trouble: step.trouble.kind}
      rest = step.rest
    }
  }
  const trouble = parser.end()
  return trouble ? {requests, trouble: trouble.kind} : {requests}
}

const text = (s: string) => Buffer.from(s, 'utf8')
const nameChars = fc.string({unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz_'), minLength: 1, maxLength: 12})
const valueChars = fc.oneof(fc.string({unit: fc.constantFrom(...'ab@.=:é \r'), maxLength: 30}), fc.string({unit: 'grapheme', maxLength: 10})).map((v) => v.replace(/[\n\0]/g, ''))
/** Pieces of a stream: mostly well-formed, with every kind of trouble and the limits' edges. */
const token = fc.oneof(
  {weight: 8, arbitrary: fc.tuple(nameChars, valueChars, fc.boolean()).map(([n, v, crlf]) => text(`${n}=${v}${crlf ? '\r\n' : '\n'}`))},
  {weight: 4, arbitrary: fc.constantFrom(text('\n'), text('\r\n'))},
  {weight: 1, arbitrary: fc.string({maxLength: 20}).map((s) => text(`${s.replace(/[=\n]/g, '')}\n`))},
  {weight: 1, arbitrary: fc.uint8Array({maxLength: 24}).map((b) => Buffer.from(b))},
  {weight: 1, arbitrary: fc.constant(Buffer.from([0]))},
  {weight: 1, arbitrary: fc.tuple(fc.integer({min: 8189, max: 8195}), fc.constantFrom('\n', '\r\n', '\r\r\n')).map(([n, end]) => text(`v=${'x'.repeat(n - 2)}${end}`))},
  {weight: 1, arbitrary: fc.integer({min: 997, max: 1003}).map((n) => text('a=\n'.repeat(n)))},
  {weight: 1, arbitrary: fc.integer({min: 8, max: 9}).map((n) => text(`big=${'y'.repeat(8180)}\n`.repeat(n)))},
)
const stream = fc.array(token, {maxLength: 12}).map((parts) => Buffer.concat(parts))

/** `stream` cut at arbitrary points. */
function cut(bytes: Buffer, points: readonly number[]): Buffer[] {
  const at = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((a, b) => a - b)
  const chunks: Buffer[] = []
  let start = 0
  for (const p of at) {
    chunks.push(bytes.subarray(start, p))
    start = p
  }
  chunks.push(bytes.subarray(start))
  return chunks
}

describe('RequestParser (fast-check, reference parser from SPEC §11)', () => {
  it('agrees with the reference on any stream cut anywhere; neither chunking nor a request limit per push changes the result', () => {
    const seen = new Map<string, number>()
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), {maxLength: 20}), fc.integer({min: 1, max: 3}), (bytes, points, limit) => {
        const whole = parseChunks([bytes])
        const chunked = parseChunks(cut(bytes, points), limit)
        const bytewise = bytes.length < 3000 ? parseChunks([...bytes].map((b) => Buffer.from([b]))) : chunked
        const expected = reference(bytes)
        expect(chunked).toEqual(whole)
        expect(bytewise).toEqual(whole)
        expect(whole.requests.map((r) => Object.fromEntries(r))).toEqual(expected.requests.map((r) => Object.fromEntries(r)))
        expect(whole.trouble !== undefined).toBe(expected.trouble)
        const kind = whole.trouble ?? (whole.requests.length > 0 ? 'good' : 'nothing')
        seen.set(kind, (seen.get(kind) ?? 0) + 1)
      }),
      {numRuns: 1500},
    )
    // Every branch is reached by the generated streams, not only by luck.
    for (const kind of ['good', 'nul', 'line-too-long', 'request-too-long', 'too-many-attributes', 'no-equals', 'empty', 'incomplete']) {
      expect(seen.get(kind) ?? 0, `${kind}: ${JSON.stringify([...seen])}`).toBeGreaterThanOrEqual(10)
    }
  })

  it('holds at most one line: an endless line is trouble at octet 8194, not at its end', () => {
    const parser = new RequestParser()
    expect(parser.push(Buffer.alloc(8193, 'x')).trouble).toBeUndefined()
    expect(parser.push(Buffer.from('x')).trouble?.kind).toBe('line-too-long')
  })

  it('values keep "=" and CR inside; CR LF and LF both end a line', () => {
    const parser = new RequestParser()
    const step = parser.push(text('a=b=c\r\nx=1\r2\nempty=\n\r\n'))
    expect(step.requests.map((r) => Object.fromEntries(r))).toEqual([{a: 'b=c', x: '1\r2', empty: ''}])
  })
})

describe('question: what a request asks', () => {
  const rcpt = (extra: Record<string, string>) => new Map(Object.entries({request: 'smtpd_access_policy', protocol_state: 'RCPT', ...extra}))
  it.each([
    [{recipient: 'joe@Example.ORG.'}, {kind: 'decide', domain: 'example.org'}],
    [{recipient: '"a@b"@example.org', server_address: '192.0.2.7'}, {kind: 'decide', domain: 'example.org', serverAddress: '192.0.2.7'}],
    [{recipient: 'joe@example.org', server_address: '::FFFF:192.0.2.7'}, {kind: 'decide', domain: 'example.org', serverAddress: '192.0.2.7'}],
    [{recipient: 'joe@example.org', server_address: 'unknown'}, {kind: 'decide', domain: 'example.org'}],
    [{recipient: 'joe@bücher.example'}, {kind: 'decide', domain: 'xn--bcher-kva.example'}],
  ])('%j → %j', (attrs, expected) => {
    expect(question(rcpt(attrs))).toEqual(expected)
  })

  it.each([
    [{recipient: 'joe@[192.0.2.1]'}],
    [{recipient: 'joe'}],
    [{recipient: ''}],
    [{recipient: 'joe@exa mple.org'}],
    [{recipient: 'joe@192.0.2.1'}],
    [{recipient: 'joe@example.org', protocol_state: 'DATA'}],
    [{recipient: 'joe@example.org', request: 'junk'}],
    [{recipient: 'joe@ex\nample.org'}],
    [{recipient: 'joe@bü\tcher.example'}],
    [{recipient: 'joe@bü%63her.example'}],
  ])('%j → DUNNO', (attrs) => {
    expect(question(rcpt(attrs)).kind).toBe('dunno')
  })

  it('never puts the local part in its note', () => {
    const asked = question(rcpt({recipient: 'secret.person@[1.2.3.4]'}))
    expect(JSON.stringify(asked)).not.toContain('secret')
  })

  it('a connection\'s remembering readers read every request as the plain ones do, whatever came before', () => {
    const domain = fc.oneof(fc.constantFrom('example.org', 'Example.ORG.', 'bücher.example', '[192.0.2.1]', '192.0.2.1', 'ex ample.org', ''), fc.string({maxLength: 12}))
    const address = fc.option(fc.oneof(fc.constantFrom('192.0.2.7', '::FFFF:192.0.2.7', '2001:DB8::1', '127.1', 'unknown', ''), fc.string({maxLength: 12})), {nil: undefined})
    const request = fc.record({local: fc.constantFrom('joe', 'a@b', ''), domain, address})
    let reached = 0
    fc.assert(fc.property(fc.array(request, {maxLength: 12}), (requests) => {
      const readers = rememberingReaders()
      for (const r of requests) {
        const attrs = rcpt({recipient: `${r.local}@${r.domain}`, ...(r.address === undefined ? {} : {server_address: r.address})})
        expect(question(attrs, readers)).toEqual(question(attrs))
      }
      // a repeat: the remembered reading was used (same text twice in a row)
      if (requests.some((r, i) => i > 0 && r.domain === requests[i - 1].domain)) reached++
    }), {numRuns: 300})
    expect(reached).toBeGreaterThan(10)
  })

  it('recipientDomain: the part after the last @', () => {
    expect(recipientDomain('a@b@MX.example.org')).toBe('mx.example.org')
  })
})

describe('formatReply', () => {
  it('DEFER_IF_PERMIT names the server; DUNNO otherwise', () => {
    expect(formatReply('mx1.example.org')).toBe('action=DEFER_IF_PERMIT 4.7.1 Please use server mx1.example.org\n\n')
    expect(formatReply('2001:db8::1')).toBe('action=DEFER_IF_PERMIT 4.7.1 Please use server 2001:db8::1\n\n')
    expect(formatReply(undefined)).toBe('action=DUNNO\n\n')
  })
  it.each(['mx1\n\naction=OK', 'mx1.example.org\r', 'a b', 'mx\u0000', '', 'x'.repeat(300)])('a name unfit for a reply (%j) gives DUNNO', (name) => {
    expect(formatReply(name)).toBe('action=DUNNO\n\n')
  })
})

describe('--listen and --socket-mode values', () => {
  it.each([
    ['inet:127.0.0.1:10040', {kind: 'inet', host: '127.0.0.1', port: 10040}],
    ['inet:[::1]:0', {kind: 'inet', host: '::1', port: 0}],
    ['unix:/run/smtpdcheck/policy', {kind: 'unix', path: '/run/smtpdcheck/policy'}],
  ])('%s', (value, expected) => expect(parseListen(value)).toEqual(expected))
  it.each(['inet:::1:10040', 'inet:[localhost]:10040', 'inet:local_host:10040', 'inet:127.0.0.1', 'inet:127.0.0.1:65536', 'tcp:1.2.3.4:5', 'unix:', 'inet:[127.0.0.1]:5', 'inet:127.1:10040'])(
    '%s is a usage error',
    (value) => expect(() => parseListen(value)).toThrow(UsageError),
  )
  it('socket mode is octal', () => {
    expect(parseSocketMode('0660')).toBe(0o660)
    expect(() => parseSocketMode('0x1ff')).toThrow(UsageError)
    expect(() => parseSocketMode('888')).toThrow(UsageError)
  })
})
