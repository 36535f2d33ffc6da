// ESM entry point: the CommonJS module's exports, by name.
import cjs from './index.js';

export const {
  Telemetry,
  Stage,
  RagQuery,
  Phase,
  LlmCall,
  HttpRequest,
  WEB_VITALS,
  PROMETHEUS_CONTENT_TYPE,
  OPENMETRICS_CONTENT_TYPE,
  PROTOBUF_CONTENT_TYPE,
  FORMATS,
  openStages,
  renderMultiprocessDir,
  renderMultiprocessDirBuffer,
  MULTIPROC_DIR_ENV,
} = cjs;
export default cjs;
