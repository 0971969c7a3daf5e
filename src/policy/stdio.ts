// `serve --stdio` (SPEC §11): the policy protocol on standard input and output, for one
// connection, as Postfix's spawn(8) runs a policy server (and as one may try it by hand).
import {fstatSync} from 'node:fs'
import type net from 'node:net'
import {Duplex} from 'node:stream'

/**
 * Standard input and output as one duplex stream, in the shape the server's connections
 * use: reads pause while the server waits (backpressure), writes go to stdout in order,
 * `close` comes once input has ended and every reply is written.
 */
export function stdioStream(): net.Socket {
  const input = process.stdin
  const output = process.stdout
  let written = 0
  const stream = new Duplex({
    allowHalfOpen: true,
    read() {
      input.resume()
    },
    write(chunk: Buffer, _encoding, callback) {
      written += chunk.length
      output.write(chunk, callback)
    },
    final(callback) {
      callback()
    },
  })
  input.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) input.pause()
  })
  input.on('end', () => stream.push(null))
  input.on('error', (error) => stream.destroy(error))
  output.on('error', (error) => stream.destroy(error))
  Object.defineProperty(stream, 'bytesWritten', {get: () => written})
  return stream as unknown as net.Socket
}

/** Is descriptor `fd` the same open file as one of `others` (spawn(8) connects stderr to the client too)? */
export function sameFile(fd: number, others: readonly number[]): boolean {
  try {
    const stat = fstatSync(fd, {bigint: true})
    return others.some((other) => {
      const o = fstatSync(other, {bigint: true})
      return o.dev === stat.dev && o.ino === stat.ino
    })
  } catch {
    return false
  }
}
