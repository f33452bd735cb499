export { fcRuns, LONG, scaled, seededRandom, timeoutMs } from './fault-scale.js'
export { deepNesting, hostileStrings, hostileValues } from './hostile-input.js'
export { jsonBodiesOf, malformedFramings, rawExchange, statusesOf } from './raw-http.js'
