// docs/report.schema.json and a validator for the subset of JSON Schema it uses: every
// --json document the tests make is held to it (test/report.test.ts, test/ux-json.test.ts).
import {readFileSync} from 'node:fs'

export const SCHEMA = JSON.parse(readFileSync(new URL('../docs/report.schema.json', import.meta.url), 'utf8'))

/**
 * The subset of JSON Schema 2020-12 the schema uses. Any other keyword throws, so the
 * schema cannot say more than this checks. Returns the list of violations.
 */
const ANNOTATIONS = new Set(['$schema', '$id', '$defs', 'title', 'description'])
const CHECKED = new Set(['type', 'enum', 'minimum', 'maximum', 'properties', 'required', 'additionalProperties', 'items', '$ref', 'if', 'then', 'else'])
export function validate(value: unknown, schema: Record<string, any> = SCHEMA, path = '$'): string[] {
  for (const key of Object.keys(schema)) if (!ANNOTATIONS.has(key) && !CHECKED.has(key)) throw new Error(`validator: unsupported keyword ${key}`)
  if (schema.$ref) return validate(value, SCHEMA.$defs[schema.$ref.replace('#/$defs/', '')], path)
  // if/then/else (only alone with annotations here): the document is a report or an error object.
  if (schema.if) return validate(value, validate(value, schema.if, path).length === 0 ? schema.then : schema.else, path)
  const typeOf = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : Number.isInteger(v) ? 'integer' : typeof v)
  if (schema.type) {
    const types = [schema.type].flat()
    const t = typeOf(value)
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) return [`${path}: ${t} is not ${types.join('|')}`]
  }
  if (schema.enum && !schema.enum.includes(value)) return [`${path}: ${JSON.stringify(value)} not in enum`]
  const errors: string[] = []
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${path}: below ${schema.minimum}`)
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${path}: above ${schema.maximum}`)
  }
  if (Array.isArray(value) && schema.items) value.forEach((item, i) => errors.push(...validate(item, schema.items, `${path}[${i}]`)))
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>
    for (const key of schema.required ?? []) if (!(key in object)) errors.push(`${path}: missing ${key}`)
    for (const [key, v] of Object.entries(object)) {
      if (schema.properties?.[key]) errors.push(...validate(v, schema.properties[key], `${path}.${key}`))
      else if (schema.additionalProperties === false) errors.push(`${path}: unexpected ${key}`)
    }
  }
  return errors
}
