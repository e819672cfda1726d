// Every suite of the harness, in the order a certification runs them.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageRoot } from '../../src/wire/index.js'
import type { ConformanceTest } from '../core/test.js'
import { wireTests } from './wire.js'
import { ldlmTests } from './ldlm.js'
import { ldlmMoreTests } from './ldlm-more.js'
import { metadataTests } from './metadata.js'
import { stripingTests } from './striping.js'

export const allTests: ConformanceTest[] = [...wireTests, ...metadataTests, ...stripingTests, ...ldlmTests, ...ldlmMoreTests]

export interface Requirement { id: string; text: string; source: string; area: string }

/** The requirement catalogue of spec/requirements, every area. */
export function requirements(): Requirement[] {
  const dir = join(packageRoot(), 'spec', 'requirements')
  return readdirSync(dir).filter(f => f.endsWith('.json') && !f.endsWith('.schema.json')).sort().flatMap(f => {
    const d = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { area: string; requirements: Array<Omit<Requirement, 'area'>> }
    return d.requirements.map(r => ({ ...r, area: d.area }))
  })
}
