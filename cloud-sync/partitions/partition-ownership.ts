import { partitionOf } from './partition.js';

/**
 * Which partitions this cloud-sync worker holds right now, asked per site by
 * the alarm lifecycle (only the holder escalates an alarm and applies its
 * acknowledgements) and kept by the lease holder (alarm-handover.ts). Made
 * before the dispatch starts, so that not one timer of a partition held
 * elsewhere is armed at a restart.
 */
export class PartitionOwnership {
  private readonly held = new Set<number>();

  constructor(readonly count: number) {}

  partitionOf(site: string): number {
    return partitionOf(site, this.count);
  }

  holds(site: string): boolean {
    return this.held.has(partitionOf(site, this.count));
  }

  has(k: number): boolean {
    return this.held.has(k);
  }

  add(k: number): void {
    this.held.add(k);
  }

  delete(k: number): void {
    this.held.delete(k);
  }

  partitions(): number[] {
    return [...this.held].sort((a, b) => a - b);
  }
}
