export {
  loadObservabilityConfig,
  type MetricsExposure,
  metricsAccessAllowed,
  type ObservabilityConfig,
  ObservabilityConfigError,
} from './config.js'
export {
  type AccessLogger,
  createHttpObserver,
  type HttpObserver,
  type HttpObserverOptions,
  type ObservedRequestHandle,
  REQUEST_ID_HEADER,
  type RequestOutcome,
  requestIdFrom,
  withTraceContext,
} from './http-observer.js'
export {
  type CommitObservation,
  createServiceMetrics,
  eventLogCommitObserver,
  type ObservedRequest,
  registerReadiness,
  type ServiceMetrics,
} from './metrics.js'
export { startMetricsServer } from './metrics-server.js'
export { closeGracefully, isClientDisconnect } from './shutdown.js'
export {
  endServerSpan,
  type HeaderSource,
  SESSION_ID_ATTRIBUTE,
  startServerSpan,
  startTracing,
  type Tracing,
  type TracingOptions,
  tracedFetch,
} from './tracing.js'
