// Server-word grammar and option values (SPEC §2): pure, no socket.
import {describe, expect, it} from 'vitest'

import {
  MAX_TIMER_SECONDS,
  UsageError,
  parseDnsServer,
  parseInteger,
  parseSeconds,
  parseServerList,
  parseServerWord,
  parseStop,
} from '../../src/core/grammar.js'

/** How an error line shows user input: quoted, cut to 200 characters with `…` (man page). */
const echoed = (text: string) => `"${text.length > 200 ? `${text.slice(0, 200)}…` : text}"`
const label63 = 'a'.repeat(63)
/** 4 × 63 + 3 dots = 255 octets; cut to the length wanted. */
const nameOf = (octets: number) => [label63, label63, label63, label63].join('.').slice(0, octets)

describe('parseServerWord: valid forms', () => {
  it.each([
    ['mx.example.org', {name: 'mx.example.org', host: 'mx.example.org', kind: 'name', prio: undefined}],
    ['10:mx.example.org', {name: 'mx.example.org', host: 'mx.example.org', kind: 'name', prio: 10}],
    ['0xdeadbeef.example.com', {name: '0xdeadbeef.example.com', host: '0xdeadbeef.example.com', kind: 'name', prio: undefined}],
    ['0xa.a', {name: '0xa.a', host: '0xa.a', kind: 'name', prio: undefined}],
    ['0:mx', {name: 'mx', host: 'mx', kind: 'name', prio: 0}],
    ['65535:mx', {name: 'mx', host: 'mx', kind: 'name', prio: 65_535}],
    ['MX.Example.ORG.', {name: 'MX.Example.ORG.', host: 'mx.example.org', kind: 'name', prio: undefined}],
    ['5:a-b.c0', {name: 'a-b.c0', host: 'a-b.c0', kind: 'name', prio: 5}],
    ['localhost', {name: 'localhost', host: 'localhost', kind: 'name', prio: undefined}],
    ['autocomplete.', {name: 'autocomplete.', host: 'autocomplete', kind: 'name', prio: undefined}],
    ['127.0.0.1', {name: '127.0.0.1', host: '127.0.0.1', kind: 'ipv4', prio: undefined}],
    ['20:192.0.2.255', {name: '192.0.2.255', host: '192.0.2.255', kind: 'ipv4', prio: 20}],
    ['2001:db8::1', {name: '2001:db8::1', host: '2001:db8::1', kind: 'ipv6', prio: undefined}],
    ['::1', {name: '::1', host: '::1', kind: 'ipv6', prio: undefined}],
    ['2001:DB8:0::1', {name: '2001:DB8:0::1', host: '2001:db8::1', kind: 'ipv6', prio: undefined}],
    // A bare word that is an IPv6 address as a whole is that address, with no priority.
    ['10:2001:db8::1', {name: '10:2001:db8::1', host: '10:2001:db8::1', kind: 'ipv6', prio: undefined}],
    ['[::1]', {name: '[::1]', host: '::1', kind: 'ipv6', prio: undefined}],
    ['10:[2001:db8::1]', {name: '[2001:db8::1]', host: '2001:db8::1', kind: 'ipv6', prio: 10}],
    // A mapped address is the IPv4 address it maps.
    ['::ffff:127.0.0.1', {name: '::ffff:127.0.0.1', host: '127.0.0.1', kind: 'ipv4', prio: undefined}],
    ['7:[::ffff:7f00:1]', {name: '[::ffff:7f00:1]', host: '127.0.0.1', kind: 'ipv4', prio: 7}],
    [nameOf(253), {name: nameOf(253), host: nameOf(253), kind: 'name', prio: undefined}],
    [`${nameOf(253)}.`, {name: `${nameOf(253)}.`, host: nameOf(253), kind: 'name', prio: undefined}],
  ])('%s', (word, expected) => {
    expect(parseServerWord(word)).toEqual({...expected, index: 0})
  })
})

describe('parseServerWord: malformed words', () => {
  it.each([
    ['', /empty word/],
    ['127.1', /dotted-quad/],
    ['0x7f.0.0.1', /dotted-quad/],
    ['0x7f000001', /dotted-quad/],
    ['10:mx1.example.org 20:mx2.example.org', /contains white space \(one server per argument\)/],
    ['mx\t.example', /contains white space/],
    ['0x7f.1', /dotted-quad/],
    ['010.0.0.1', /dotted-quad/],
    ['256.0.0.1', /dotted-quad/],
    ['1.2.3', /dotted-quad/],
    ['1.2.3.4.5', /dotted-quad/],
    ['70000:host', /priority "70000"/],
    ['-1:host', /priority "-1"/],
    ['a:host', /priority "a"/],
    ['1.5:host', /priority "1.5"/],
    ['10:', /no host after the priority/],
    [':host', /priority ""/],
    ['10:::1', /must be bracketed/],
    ['10:1.2.3.4:5', /a port goes in --port/],
    ['[not-v6]', /brackets must hold an IPv6 address/],
    ['10:[127.0.0.1]', /brackets must hold an IPv6 address/],
    ['[::1', /brackets must hold an IPv6 address/],
    ['[::1]:25', /a port goes in --port/],
    ['[::1]x', /brackets must hold an IPv6 address/],
    ['fe80::1%eth0', /zone indexes/],
    [`${'a'.repeat(64)}.example`, /label longer than 63/],
    [nameOf(254), /longer than 253/],
    ['-host-', /bad label "-host-"/],
    ['host-.', /bad label "host-"/],
    ['under_score', /bad label "under_score"/],
    ['mx.123', /all-digit label/],
    ['a..b', /empty label/],
    ['.', /empty host name/],
    ['.example', /empty label/],
    ['mx.exa mple', /contains white space/],
    ['mx\u00e9.example', /bad label/],
  ])('%j', (word, why) => {
    let error: unknown
    try {
      parseServerWord(word)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(UsageError)
    const message = (error as Error).message
    expect(message).toContain(echoed(word))
    expect(message).toMatch(why)
  })
})

describe('parseServerList: dedupe', () => {
  it('keeps the first position and the lowest priority, case- and trailing-dot-insensitively', () => {
    const list = parseServerList(['30:B.example', '10:a.example', '20:b.example.', '5:A.EXAMPLE', 'c.example'])
    expect(list).toEqual([
      {name: 'B.example', host: 'b.example', kind: 'name', prio: 20, index: 0},
      {name: 'a.example', host: 'a.example', kind: 'name', prio: 5, index: 1},
      {name: 'c.example', host: 'c.example', kind: 'name', prio: undefined, index: 2},
    ])
  })

  it('an unprioritised first mention takes the priority of a later one; a higher later one changes nothing', () => {
    expect(parseServerList(['mx', '10:MX', '20:mx']).map((e) => [e.name, e.prio])).toEqual([['mx', 10]])
  })

  it('addresses are compared after normalisation', () => {
    const list = parseServerList(['[::1]', '::1', '0:0:0:0:0:0:0:1', '127.0.0.1', '3:[::ffff:127.0.0.1]'])
    expect(list.map((e) => [e.name, e.host, e.prio, e.index])).toEqual([
      ['[::1]', '::1', undefined, 0],
      ['127.0.0.1', '127.0.0.1', 3, 1],
    ])
  })

  it('indexes follow the deduplicated list', () => {
    expect(parseServerList(['a', 'b', 'a', 'c']).map((e) => e.index)).toEqual([0, 1, 2])
  })

  it('an empty list is valid (no candidate)', () => {
    expect(parseServerList([])).toEqual([])
  })

  it('one bad word rejects the whole list', () => {
    expect(() => parseServerList(['10:good.example', 'bad_word'])).toThrow(/"bad_word"/)
  })
})

describe('parseStop', () => {
  it.each([
    ['192.0.2.1', {address: '192.0.2.1'}],
    ['2001:DB8:0::1', {address: '2001:db8::1'}],
    ['[2001:db8::1]', {address: '2001:db8::1'}],
    ['::ffff:192.0.2.1', {address: '192.0.2.1'}],
    ['s2.Domain.com', {name: 's2.Domain.com'}],
    ['s2.domain.com.', {name: 's2.domain.com.'}],
  ])('%s', (text, expected) => {
    expect(parseStop(text)).toEqual(expected)
  })

  it.each(['127.1', '010.0.0.1', 'bad_name', '', '-x', 'a..b', 'mx.123', '[not-v6]'])('refuses %j naming it', (text) => {
    expect(() => parseStop(text)).toThrow(UsageError)
    expect(() => parseStop(text)).toThrow(`"${text}"`)
  })
})

describe('parseSeconds', () => {
  it.each([
    ['0', 0],
    ['10', 10],
    ['0.5', 0.5],
    ['.25', 0.25],
    ['3.', 3],
    ['007', 7],
  ])('%s', (text, seconds) => {
    expect(parseSeconds('timeout', text)).toBe(seconds)
  })

  it.each(['-1', 'abc', 'Infinity', 'NaN', '1e400', '1e3', '', ' 5', '5 ', '+5', '0x10', '1,5', '9'.repeat(400)])(
    'refuses %j naming the flag and the value',
    (text) => {
      expect(() => parseSeconds('timeout', text)).toThrow(UsageError)
      expect(() => parseSeconds('timeout', text)).toThrow(`bad --timeout ${echoed(text)}`)
    },
  )

  it('honours a maximum: the longest timer Node can set', () => {
    expect(parseSeconds('timeout', String(MAX_TIMER_SECONDS), MAX_TIMER_SECONDS)).toBe(MAX_TIMER_SECONDS)
    expect(() => parseSeconds('timeout', String(MAX_TIMER_SECONDS + 1), MAX_TIMER_SECONDS)).toThrow(/up to 2147483/)
    expect(MAX_TIMER_SECONDS * 1000).toBeLessThanOrEqual(2 ** 31 - 1)
  })
})

describe('parseInteger', () => {
  it('accepts the bounds', () => {
    expect(parseInteger('port', '1', 1, 65_535)).toBe(1)
    expect(parseInteger('port', '65535', 1, 65_535)).toBe(65_535)
    expect(parseInteger('attempt-delay', '0', 0, 60_000)).toBe(0)
  })

  it.each(['0', '65536', 'x', '', '-5', '2.5', '1e3', ' 25'])('refuses --port %j', (text) => {
    expect(() => parseInteger('port', text, 1, 65_535)).toThrow(`bad --port "${text}"`)
  })
})

describe('parseDnsServer', () => {
  it.each([
    ['127.0.0.1', {address: '127.0.0.1', port: 53}],
    ['127.0.0.1:5353', {address: '127.0.0.1', port: 5353}],
    ['::1', {address: '::1', port: 53}],
    ['[::1]', {address: '::1', port: 53}],
    ['[::1]:5353', {address: '::1', port: 5353}],
    ['[0:0::1]:1', {address: '::1', port: 1}],
  ])('%s', (text, expected) => {
    expect(parseDnsServer(text)).toEqual(expected)
  })

  it.each(['bad', 'ns.example', '127.0.0.1:', '127.0.0.1:0', '127.0.0.1:65536', '127.0.0.1:x', '127.1', '[::1]:0', '[bad]:53', ''])(
    'refuses %j naming it',
    (text) => {
      expect(() => parseDnsServer(text)).toThrow(UsageError)
      expect(() => parseDnsServer(text)).toThrow(`bad --dns-server "${text}"`)
    },
  )
})
