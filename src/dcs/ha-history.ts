import type { HistoryEntry } from '../cluster/store/cluster-store.js';
import type { EtcdClient } from './etcd-client.js';
import { haKeys } from './ha-state.js';

/**
 * The cluster's history in etcd (`/pgrepl-history/<cluster>/<time>`), where every agent of every host appends what
 * it did (failovers, switchovers, rejoins) and `pgrepl history` reads it from anywhere.
 */
export async function appendHaHistory(etcd: EtcdClient, cluster: string, e: HistoryEntry): Promise<void> {
  const at = String(Date.parse(e.at)).padStart(15, '0');
  await etcd.put(`${haKeys(cluster).historyPrefix}${at}-${e.node ?? 'cluster'}`, JSON.stringify(e));
}

/** Oldest first. */
export async function readHaHistory(etcd: EtcdClient, cluster: string): Promise<HistoryEntry[]> {
  const { kvs } = await etcd.list(haKeys(cluster).historyPrefix);
  return kvs.flatMap((kv) => {
    try {
      return [JSON.parse(kv.value) as HistoryEntry];
    } catch {
      return [];
    }
  });
}
