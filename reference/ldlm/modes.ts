// Lock modes and their compatibility, read from spec/ldlm/compat.json (the data the
// Quint model and the conformance suite use too), with mode values from
// spec/constants/lck_mode.json. Nothing here lists the matrix a second time.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { constantOf, loadSpec, packageRoot } from '../../src/wire/index.js'

interface CompatFile {
  modes: string[]
  clientModes: string[]
  compatible: Record<string, string[]>
}

const spec = loadSpec()
const file = JSON.parse(readFileSync(join(packageRoot(), 'spec', 'ldlm', 'compat.json'), 'utf8')) as CompatFile

const value = (name: string): number => Number(constantOf(spec, name))

/** Mode value -> the bit mask of modes it is compatible with (lck_compat_array). */
const COMPAT = new Map<number, number>(
  file.modes.map(m => [value(m), (file.compatible[m] ?? []).reduce((mask, c) => mask | value(c), 0)]),
)

export const MODE = Object.fromEntries(file.modes.map(m => [m.slice(4), value(m)])) as Record<'EX' | 'PW' | 'PR' | 'CW' | 'CR' | 'NL' | 'GROUP' | 'COS' | 'TXN', number>

/** Every mode the matrix knows, by value. */
export const ALL_MODES: readonly number[] = file.modes.map(value)
/** Modes the clients use (COS and TXN are granted by servers to themselves). */
export const CLIENT_MODES: ReadonlySet<number> = new Set(file.clientModes.map(value))

/** lockmode_compat: whether a lock of mode `held` lets one of mode `asked` coexist with it. */
export function compatible(held: number, asked: number): boolean {
  return ((COMPAT.get(held) ?? 0) & asked) !== 0
}

/** The constant name of a mode value (LCK_PW), for messages and traces. */
export function modeName(mode: number): string {
  return file.modes.find(m => value(m) === mode) ?? `mode ${mode}`
}
