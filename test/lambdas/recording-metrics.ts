import { Metrics } from '@aws-lambda-powertools/metrics';

/**
 * Powertools Metrics that keeps what it would publish instead of printing EMF to stdout, so a
 * test can assert on the metrics a handler emits.
 */
export class RecordingMetrics extends Metrics {
  readonly published: ReturnType<Metrics['serializeMetrics']>[] = [];
  coldStarts = 0;

  constructor() {
    super({ namespace: 'MilvusGuardTest', serviceName: 'milvus-guard' });
  }

  override publishStoredMetrics(): this {
    if (this.hasStoredMetrics()) this.published.push(this.serializeMetrics());
    this.clearMetrics();
    this.clearDimensions();
    this.clearMetadata();
    return this;
  }

  override captureColdStartMetric(): void {
    this.coldStarts += 1;
  }
}
