//! The tables, written by hand for both backends (see diesel.toml for why not generated).
//! Column types from `crate::db::types` map to native PostgreSQL types and to TEXT on SQLite.

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::DbTimestamp;

    platform_settings (key) {
        key -> Text,
        value -> Text,
        created_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::DbTimestamp;

    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        public_key -> Text,
        private_key -> Text,
        created_at -> DbTimestamp,
        retired_at -> Nullable<DbTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    operators (id) {
        id -> DbUuid,
        username -> Text,
        password_hash -> Text,
        display_name -> Text,
        active -> Bool,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
        failed_logins -> Integer,
        failure_window_at -> Nullable<DbTimestamp>,
        locked_until -> Nullable<DbTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    plans (id) {
        id -> DbUuid,
        name -> Text,
        max_tenants -> Integer,
        max_processes -> Integer,
        max_users -> Integer,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
        max_stored_bytes -> Nullable<BigInt>,
        max_import_rows -> Nullable<BigInt>,
        max_import_bytes -> Nullable<BigInt>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    accounts (id) {
        id -> DbUuid,
        name -> Text,
        plan_id -> DbUuid,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    tenants (id) {
        id -> DbUuid,
        account_id -> DbUuid,
        slug -> Text,
        name -> Text,
        time_zone -> Text,
        active -> Bool,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
        deleted_at -> Nullable<DbTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    organizations (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        name -> Text,
        kind -> Text,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    users (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        username -> Text,
        password_hash -> Text,
        display_name -> Text,
        email -> Nullable<Text>,
        roles -> Text,
        organization_id -> Nullable<DbUuid>,
        active -> Bool,
        failed_logins -> Integer,
        failure_window_at -> Nullable<DbTimestamp>,
        locked_until -> Nullable<DbTimestamp>,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    groups (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        name -> Text,
        description -> Text,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    group_members (tenant_id, group_id, user_id) {
        tenant_id -> DbUuid,
        group_id -> DbUuid,
        user_id -> DbUuid,
        created_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    refresh_tokens (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        family_id -> DbUuid,
        subject_id -> DbUuid,
        token_hash -> Text,
        expires_at -> DbTimestamp,
        used_at -> Nullable<DbTimestamp>,
        revoked_at -> Nullable<DbTimestamp>,
        created_at -> DbTimestamp,
        family_started_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    api_keys (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        name -> Text,
        roles -> Text,
        secret_hash -> Text,
        created_by -> DbUuid,
        created_at -> DbTimestamp,
        last_used_at -> Nullable<DbTimestamp>,
        revoked_at -> Nullable<DbTimestamp>,
        expires_at -> Nullable<DbTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    audit_log (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        at -> DbTimestamp,
        actor_kind -> Text,
        actor_id -> Nullable<DbUuid>,
        actor_name -> Text,
        action -> Text,
        target_kind -> Text,
        target_id -> Nullable<Text>,
        details -> DbJson,
        client_addr -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::DbUuid;

    usage_counters (tenant_id, month) {
        tenant_id -> DbUuid,
        month -> Text,
        api_calls -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::DbUuid;

    tenant_storage (tenant_id) {
        tenant_id -> DbUuid,
        stored_bytes -> BigInt,
    }
}

diesel::joinable!(accounts -> plans (plan_id));
diesel::joinable!(tenant_storage -> tenants (tenant_id));
diesel::joinable!(tenants -> accounts (account_id));
diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    libraries (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        key -> Text,
        definition -> DbJson,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    library_records (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        library_id -> DbUuid,
        title -> Text,
        fields -> DbJson,
        version -> BigInt,
        reviewed_at -> DbTimestamp,
        review_due_at -> Nullable<DbTimestamp>,
        deleted_at -> Nullable<DbTimestamp>,
        origin_ticket_id -> Nullable<DbUuid>,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    library_record_versions (tenant_id, record_id, version) {
        tenant_id -> DbUuid,
        record_id -> DbUuid,
        version -> BigInt,
        kind -> Text,
        at -> DbTimestamp,
        actor_kind -> Text,
        actor_id -> Nullable<DbUuid>,
        actor_name -> Text,
        ticket_id -> Nullable<DbUuid>,
        ticket_key -> Nullable<Text>,
        transition -> Nullable<Text>,
        title -> Text,
        fields -> DbJson,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::DbUuid;

    library_field_values (tenant_id, library_id, field, value, record_id) {
        tenant_id -> DbUuid,
        library_id -> DbUuid,
        field -> Text,
        value -> Text,
        record_id -> DbUuid,
        internal -> Bool,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::DbUuid;

    library_tokens (tenant_id, library_id, token, record_id, source) {
        tenant_id -> DbUuid,
        library_id -> DbUuid,
        token -> Text,
        record_id -> DbUuid,
        source -> SmallInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    webhooks (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        url -> Text,
        description -> Text,
        event_types -> DbJson,
        template -> Nullable<Text>,
        enabled -> Bool,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_until -> Nullable<DbTimestamp>,
        failing_since -> Nullable<DbTimestamp>,
        disabled_reason -> Nullable<Text>,
        created_by -> DbUuid,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
        cursor_txid -> BigInt,
        cursor_seq -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    webhook_deliveries (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        webhook_id -> DbUuid,
        event_id -> DbUuid,
        event_type -> Text,
        subject_id -> Nullable<DbUuid>,
        event_txid -> BigInt,
        event_seq -> BigInt,
        body -> Text,
        status -> Text,
        attempts -> Integer,
        last_status -> Nullable<Integer>,
        last_latency_ms -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        response_excerpt -> Nullable<Text>,
        next_attempt_at -> Nullable<DbTimestamp>,
        created_at -> DbTimestamp,
        last_attempt_at -> Nullable<DbTimestamp>,
        delivered_at -> Nullable<DbTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    notification_rules (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        template -> Text,
        event -> Text,
        to_state -> Nullable<Text>,
        recipients -> DbJson,
        addresses -> DbJson,
        language -> Text,
        description -> Text,
        enabled -> Bool,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::DbUuid;

    notification_opt_outs (tenant_id, user_id, kind) {
        tenant_id -> DbUuid,
        user_id -> DbUuid,
        kind -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    template_migrations (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        template_id -> DbUuid,
        from_version -> Integer,
        to_version -> Integer,
        mapping -> DbJson,
        filed_by -> DbTimestamp,
        status -> Text,
        after_ticket -> Nullable<DbUuid>,
        tickets -> BigInt,
        moved -> BigInt,
        blocked_count -> BigInt,
        moves -> DbJson,
        blocked -> DbJson,
        fields_dropped -> DbJson,
        actor_kind -> Text,
        actor_id -> Nullable<DbUuid>,
        actor_name -> Text,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
        finished_at -> Nullable<DbTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    backup_runs (id) {
        id -> DbUuid,
        generation -> Nullable<Text>,
        started_at -> DbTimestamp,
        finished_at -> DbTimestamp,
        status -> Text,
        error -> Nullable<Text>,
        database_bytes -> BigInt,
        row_count -> BigInt,
        attachments -> BigInt,
        attachment_bytes -> BigInt,
        copied -> Bool,
        verified_at -> Nullable<DbTimestamp>,
        verified -> Nullable<Bool>,
        verify_error -> Nullable<Text>,
        made_by -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    announcements (id) {
        id -> DbUuid,
        title -> Text,
        body -> Text,
        starts_at -> DbTimestamp,
        ends_at -> DbTimestamp,
        all_tenants -> Bool,
        mail_admins -> Bool,
        published_at -> DbTimestamp,
        published_by -> DbUuid,
        withdrawn_at -> Nullable<DbTimestamp>,
        version -> Integer,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::DbUuid;

    announcement_tenants (tenant_id, announcement_id) {
        tenant_id -> DbUuid,
        announcement_id -> DbUuid,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    tenant_exports (id) {
        id -> DbUuid,
        exported_tenant -> DbUuid,
        slug -> Text,
        status -> Text,
        requested_at -> DbTimestamp,
        finished_at -> Nullable<DbTimestamp>,
        file_name -> Nullable<Text>,
        size_bytes -> Nullable<BigInt>,
        sha256 -> Nullable<Text>,
        row_count -> Nullable<BigInt>,
        attachments -> Nullable<BigInt>,
        error -> Nullable<Text>,
    }
}

diesel::joinable!(announcement_tenants -> announcements (announcement_id));
diesel::allow_tables_to_appear_in_same_query!(announcements, announcement_tenants);

diesel::allow_tables_to_appear_in_same_query!(
    plans,
    accounts,
    tenants,
    organizations,
    users,
    groups,
    group_members,
    refresh_tokens,
    api_keys,
    audit_log,
    usage_counters,
    tenant_storage,
    operators,
    platform_settings,
);

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    masters (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        key -> Text,
        name_ja -> Text,
        name_en -> Text,
        description -> Text,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    master_items (tenant_id, master_id, code) {
        tenant_id -> DbUuid,
        master_id -> DbUuid,
        code -> Text,
        label_ja -> Text,
        label_en -> Text,
        sort_order -> Integer,
        active -> Bool,
        parent_code -> Nullable<Text>,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(masters, master_items);

// The outbox reads a subscription with whether its delivery job exists (db::webhooks).
diesel::allow_tables_to_appear_in_same_query!(webhooks, jobs);

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    templates (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        key -> Text,
        name_ja -> Text,
        name_en -> Text,
        latest_version -> Integer,
        published_version -> Nullable<Integer>,
        archived -> Bool,
        catalog_key -> Nullable<Text>,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
        ticket_seq -> BigInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    template_versions (tenant_id, template_id, number) {
        tenant_id -> DbUuid,
        template_id -> DbUuid,
        number -> Integer,
        status -> Text,
        definition -> DbJson,
        created_by -> DbUuid,
        published_by -> Nullable<DbUuid>,
        published_at -> Nullable<DbTimestamp>,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    tickets (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        template_id -> DbUuid,
        template_version -> Integer,
        key_prefix -> Text,
        number -> BigInt,
        title -> Text,
        stage -> Text,
        state -> Text,
        closed -> Bool,
        requester_id -> Nullable<DbUuid>,
        assignee_id -> Nullable<DbUuid>,
        group_id -> Nullable<DbUuid>,
        organization_id -> Nullable<DbUuid>,
        fields -> DbJson,
        created_by -> DbUuid,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
        state_entered_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::DbUuid;

    ticket_field_values (tenant_id, field, value, ticket_id) {
        tenant_id -> DbUuid,
        field -> Text,
        value -> Text,
        ticket_id -> DbUuid,
        internal -> Bool,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::DbUuid;

    ticket_tokens (tenant_id, token, ticket_id, source) {
        tenant_id -> DbUuid,
        token -> Text,
        ticket_id -> DbUuid,
        source -> SmallInt,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    ticket_history (tenant_id, ticket_id, ticket_version, ordinal) {
        tenant_id -> DbUuid,
        ticket_id -> DbUuid,
        ticket_version -> BigInt,
        ordinal -> Integer,
        at -> DbTimestamp,
        actor_kind -> Text,
        actor_id -> Nullable<DbUuid>,
        actor_name -> Text,
        kind -> Text,
        transition -> Nullable<Text>,
        from_state -> Nullable<Text>,
        to_state -> Nullable<Text>,
        field -> Nullable<Text>,
        old_value -> Nullable<DbJson>,
        new_value -> Nullable<DbJson>,
        internal -> Bool,
        state_since -> Nullable<DbTimestamp>,
        template_id -> DbUuid,
        imported -> Nullable<DbJson>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    ticket_comments (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        ticket_id -> DbUuid,
        author_kind -> Text,
        author_id -> Nullable<DbUuid>,
        author_name -> Text,
        body -> Text,
        internal -> Bool,
        created_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    ticket_watchers (tenant_id, ticket_id, user_id) {
        tenant_id -> DbUuid,
        ticket_id -> DbUuid,
        user_id -> DbUuid,
        created_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    ticket_links (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        source_id -> DbUuid,
        target_id -> DbUuid,
        kind -> Text,
        created_by -> DbUuid,
        created_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    ticket_attachments (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        ticket_id -> DbUuid,
        file_name -> Text,
        content_type -> Text,
        size -> BigInt,
        sha256 -> Text,
        internal -> Bool,
        uploaded_by -> DbUuid,
        uploader_name -> Text,
        created_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    events (tenant_id, txid, seq) {
        seq -> BigInt,
        txid -> BigInt,
        tenant_id -> DbUuid,
        id -> DbUuid,
        at -> DbTimestamp,
        event_type -> Text,
        actor_kind -> Text,
        actor_id -> Nullable<DbUuid>,
        actor_name -> Text,
        subject_type -> Text,
        subject_id -> DbUuid,
        ticket_id -> Nullable<DbUuid>,
        container -> Nullable<Text>,
        audience -> Text,
        payload -> DbJson,
        restricted_payload -> Nullable<DbJson>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    idempotency_keys (tenant_id, principal, key) {
        tenant_id -> DbUuid,
        principal -> Text,
        key -> Text,
        request_hash -> Text,
        status -> Integer,
        location -> Nullable<Text>,
        etag -> Nullable<Text>,
        body -> Text,
        created_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    mail_channels (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        address -> Text,
        description -> Text,
        template -> Text,
        defaults -> DbJson,
        subject_field -> Text,
        body_field -> Text,
        reply_transitions -> DbJson,
        unknown_senders -> Text,
        organization_domains -> DbJson,
        max_message_bytes -> BigInt,
        max_attachments -> Integer,
        enabled -> Bool,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
        imap -> Nullable<DbJson>,
        imap_password -> Nullable<Text>,
        imap_uidvalidity -> Nullable<BigInt>,
        imap_last_uid -> BigInt,
        imap_last_error -> Nullable<Text>,
        imap_polled_at -> Nullable<DbTimestamp>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    mail_messages (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        channel_id -> Nullable<DbUuid>,
        direction -> Text,
        message_id -> Nullable<Text>,
        status -> Text,
        reason -> Nullable<Text>,
        signature -> Nullable<Text>,
        sender -> Text,
        subject -> Text,
        size -> BigInt,
        sha256 -> Text,
        ticket_id -> Nullable<DbUuid>,
        raw -> Nullable<Binary>,
        attempts -> Integer,
        received_at -> DbTimestamp,
        processed_at -> Nullable<DbTimestamp>,
        comment_id -> Nullable<DbUuid>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    calendars (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        name -> Text,
        time_zone -> Text,
        rules -> DbJson,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    sla_policies (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        template -> Text,
        name -> Text,
        rank -> Integer,
        condition -> Nullable<DbJson>,
        calendar_id -> Nullable<DbUuid>,
        first_response_minutes -> Nullable<Integer>,
        resolution_minutes -> Nullable<Integer>,
        at_risk_percent -> Integer,
        enabled -> Bool,
        version -> BigInt,
        created_at -> DbTimestamp,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbTimestamp, DbUuid};

    sla_clocks (tenant_id, ticket_id, target) {
        tenant_id -> DbUuid,
        ticket_id -> DbUuid,
        target -> Text,
        policy_id -> DbUuid,
        calendar_id -> Nullable<DbUuid>,
        target_seconds -> BigInt,
        started_at -> DbTimestamp,
        elapsed_ms -> BigInt,
        as_of -> DbTimestamp,
        running -> Bool,
        stopped_at -> Nullable<DbTimestamp>,
        at_risk_at -> Nullable<DbTimestamp>,
        breach_at -> Nullable<DbTimestamp>,
        at_risk_notified -> Bool,
        breach_notified -> Bool,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    monthly_reports (tenant_id, month) {
        tenant_id -> DbUuid,
        month -> Text,
        document -> DbJson,
        generated_at -> DbTimestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    templates,
    template_versions,
    tenants,
    tickets,
    ticket_field_values,
    ticket_tokens,
    ticket_links,
    ticket_watchers,
    libraries,
    library_records,
    library_field_values,
    library_tokens,
    events,
    webhooks,
    webhook_deliveries,
    mail_channels,
    mail_messages,
    notification_rules,
    notification_opt_outs,
    calendars,
    sla_policies,
    sla_clocks,
    ticket_history,
    monthly_reports,
    template_migrations
);

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    jobs (id) {
        id -> DbUuid,
        kind -> Text,
        tenant_id -> Nullable<DbUuid>,
        payload -> DbJson,
        singleton -> Nullable<Text>,
        run_at -> DbTimestamp,
        attempts -> Integer,
        max_attempts -> Integer,
        lease_owner -> Nullable<Text>,
        lease_until -> Nullable<DbTimestamp>,
        last_error -> Nullable<Text>,
        failed_at -> Nullable<DbTimestamp>,
        created_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbTimestamp, DbUuid};

    imports (tenant_id, id) {
        tenant_id -> DbUuid,
        id -> DbUuid,
        target -> Text,
        target_key -> Nullable<Text>,
        mode -> Text,
        spec -> DbJson,
        format -> Text,
        encoding -> Text,
        status -> Text,
        source -> Text,
        total_rows -> BigInt,
        next_row -> BigInt,
        created_count -> BigInt,
        updated_count -> BigInt,
        unchanged_count -> BigInt,
        failed_count -> BigInt,
        error -> Nullable<Text>,
        created_by -> DbUuid,
        created_at -> DbTimestamp,
        started_at -> Nullable<DbTimestamp>,
        finished_at -> Nullable<DbTimestamp>,
        updated_at -> DbTimestamp,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use crate::db::types::{DbJson, DbUuid};

    import_rows (tenant_id, import_id, row_number) {
        tenant_id -> DbUuid,
        import_id -> DbUuid,
        row_number -> BigInt,
        line -> BigInt,
        outcome -> Text,
        subject_id -> Nullable<Text>,
        subject_key -> Nullable<Text>,
        errors -> DbJson,
    }
}

diesel::allow_tables_to_appear_in_same_query!(imports, import_rows);
