import { Metrics } from '@aws-lambda-powertools/metrics';

/**
 * Powertools Metrics that keeps what it would publish instead of printing EMF: the CLI's stdout
 * is for the user, and a test can assert on the metrics a handler emits. The cold-start metric,
 * which Powertools would publish on its own, is only counted.
 */
export class LocalMetrics extends Metrics {
  readonly published: ReturnType<Metrics['serializeMetrics']>[] = [];
  coldStarts = 0;

  constructor() {
    super({ namespace: 'MilvusGuard', serviceName: 'milvus-guard' });
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
