// Public entry point of the tour: a recorded exchange of every request format.
export { runTour, tourPlan } from './tour.js'
export type { TourOptions, TourResult, TourCall } from './tour.js'
export { pcapRecorderFactory } from './record.js'
export type { TourRecording, RecordedUnit } from './record.js'
export { sampleFields, sampleField, lockDesc } from './samples.js'
export type { SampleContext } from './samples.js'
