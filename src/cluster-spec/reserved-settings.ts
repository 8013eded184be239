/**
 * Settings pgrepl derives from the spec itself; letting `settings:` override them would silently
 * break replication or the security model, so the spec rejects them with this reason.
 */
export const RESERVED_SETTINGS: Readonly<Record<string, string>> = {
  listen_addresses: 'it comes from the node host',
  port: 'it comes from the node port',
  unix_socket_directories: 'pgrepl connects over TCP only',
  cluster_name: 'it is the node name',
  primary_conninfo: 'pgrepl points each replica at its upstream',
  primary_slot_name: 'each replica uses the slot named after it',
  password_encryption: 'pgrepl allows SCRAM-SHA-256 only',
  hba_file: 'pgrepl renders pg_hba.conf in the data directory',
  ident_file: 'pgrepl renders the configuration in the data directory',
  config_file: 'pgrepl renders postgresql.conf in the data directory',
  data_directory: 'it is the node dataDir',
  hot_standby: 'replicas must accept reads',
  synchronous_standby_names: 'the replication mode sets it',
  ssl: "tls: in the spec sets it (auto, off, or each node's files)",
  ssl_cert_file: "it comes from the node's tls: cert (or tls: auto)",
  ssl_key_file: "it comes from the node's tls: key (or tls: auto)",
};

/** Settings the `backup:` section sets on every node (they point PostgreSQL at pgBackRest). */
export const ARCHIVE_SETTINGS: readonly string[] = ['archive_mode', 'archive_command', 'restore_command'];
