/*
 * cloudfs check: verify a whole image and optionally repair what can be.
 *
 * What counts as a problem: a corruption (a payload block or checkpoint
 * that fails its checksum) and a torn tail (bytes after the last valid
 * record, which a crash during an append leaves).  Leaked bytes are not a
 * problem: they are space garbage collection can reclaim.  After a repair
 * the image is checked again, read-only, and the exit status says what
 * that second check found.
 *
 * Copyright (c) 2026 The cloudfs authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <json-glib/json-glib.h>

#include "cli.h"

static gboolean opt_repair;
static gboolean opt_json;

static const GOptionEntry check_options[] = {
    { "repair", 'r', 0, G_OPTION_ARG_NONE, &opt_repair,
      "Cut a torn tail and unused bytes, drop bad checkpoint pointers, "
      "rebuild a damaged index", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json,
      "Print one JSON object instead of text", NULL },
    { NULL }
};

static bool has_problems(const CfsCheckResult *r)
{
    return r->corruptions > 0 || r->torn_bytes > 0 || r->repaired;
}

static bool run_check(const char *path, bool repair, CfsCheckResult *result,
                      GError **errp)
{
    CfsIO io;
    int fd = open(path, (repair ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    bool ok;

    if (fd < 0) {
        g_set_error(errp, CFS_ERROR, CFS_ERROR_IO, "cannot open '%s': %s",
                    path, g_strerror(errno));
        return false;
    }
    if (repair && !cli_lock_for_writing(fd, path, errp)) {
        close(fd);
        return false;
    }
    cfs_io_init_fd(&io, &fd);
    ok = cfs_check(&io, repair, result, errp);
    close(fd);
    if (!ok) {
        g_prefix_error(errp, "%s: ", path);
    }
    return ok;
}

static void print_text(const char *title, const CfsCheckResult *r)
{
    if (title) {
        printf("%s\n", title);
    }
    for (unsigned i = 0; r->messages && i < r->messages->len; i++) {
        printf("%s\n", (const char *)r->messages->pdata[i]);
    }
    printf("records: %" G_GUINT64_FORMAT "\n", r->records);
    printf("versions: %" G_GUINT64_FORMAT "\n", r->versions);
    printf("log end: %" G_GUINT64_FORMAT "\n", r->log_end);
    printf("file size: %" G_GUINT64_FORMAT "\n", r->file_size);
    printf("torn bytes: %" G_GUINT64_FORMAT "\n", r->torn_bytes);
    printf("unused bytes: %" G_GUINT64_FORMAT "\n", r->unused_bytes);
    printf("corruptions: %" G_GUINT64_FORMAT "\n", r->corruptions);
    printf("index corruptions: %" G_GUINT64_FORMAT "\n",
           r->index_corruptions);
    printf("live bytes: %" G_GUINT64_FORMAT "\n", r->live_bytes);
    printf("data bytes: %" G_GUINT64_FORMAT "\n", r->data_bytes);
    printf("leaked bytes: %" G_GUINT64_FORMAT "\n", r->leaked_bytes);
    printf("repaired: %s\n", r->repaired ? "yes" : "no");
}

static void add_result(JsonBuilder *b, const char *member,
                       const CfsCheckResult *r)
{
    static const struct {
        const char *name;
        size_t offset;
    } counters[] = {
        { "records", G_STRUCT_OFFSET(CfsCheckResult, records) },
        { "versions", G_STRUCT_OFFSET(CfsCheckResult, versions) },
        { "log-end", G_STRUCT_OFFSET(CfsCheckResult, log_end) },
        { "file-size", G_STRUCT_OFFSET(CfsCheckResult, file_size) },
        { "torn-bytes", G_STRUCT_OFFSET(CfsCheckResult, torn_bytes) },
        { "unused-bytes", G_STRUCT_OFFSET(CfsCheckResult, unused_bytes) },
        { "corruptions", G_STRUCT_OFFSET(CfsCheckResult, corruptions) },
        { "index-corruptions",
          G_STRUCT_OFFSET(CfsCheckResult, index_corruptions) },
        { "live-bytes", G_STRUCT_OFFSET(CfsCheckResult, live_bytes) },
        { "data-bytes", G_STRUCT_OFFSET(CfsCheckResult, data_bytes) },
        { "leaked-bytes", G_STRUCT_OFFSET(CfsCheckResult, leaked_bytes) },
    };

    json_builder_set_member_name(b, member);
    json_builder_begin_object(b);
    for (size_t i = 0; i < G_N_ELEMENTS(counters); i++) {
        json_builder_set_member_name(b, counters[i].name);
        json_builder_add_int_value(b, G_STRUCT_MEMBER(uint64_t, r,
                                                      counters[i].offset));
    }
    json_builder_set_member_name(b, "repaired");
    json_builder_add_boolean_value(b, r->repaired);
    json_builder_set_member_name(b, "messages");
    json_builder_begin_array(b);
    for (unsigned i = 0; r->messages && i < r->messages->len; i++) {
        json_builder_add_string_value(b, r->messages->pdata[i]);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
}

static void print_json(const char *path, const CfsCheckResult *first,
                       const CfsCheckResult *after_repair, int status)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *text = NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "filename");
    json_builder_add_string_value(b, path);
    add_result(b, "check", first);
    if (after_repair) {
        add_result(b, "after-repair", after_repair);
    }
    json_builder_set_member_name(b, "status");
    json_builder_add_string_value(b,
        status == CLI_EXIT_OK ? "clean" :
        status == CLI_EXIT_REPAIRED ? "repaired" : "problems");
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, true);
    text = json_generator_to_data(gen, NULL);
    printf("%s\n", text);
}

static void report_failure(const char *path, const CfsCheckResult *r,
                           bool after_repair)
{
    g_autofree char *what = NULL;

    if (r->corruptions && r->torn_bytes) {
        what = g_strdup_printf("%" G_GUINT64_FORMAT " corruptions and a torn "
                               "tail of %" G_GUINT64_FORMAT " bytes found",
                               r->corruptions, r->torn_bytes);
    } else if (r->corruptions) {
        what = g_strdup_printf("%" G_GUINT64_FORMAT " %s found",
                               r->corruptions,
                               r->corruptions == 1 ? "corruption"
                                                   : "corruptions");
    } else {
        what = g_strdup_printf("a torn tail of %" G_GUINT64_FORMAT " bytes "
                               "found", r->torn_bytes);
    }

    if (after_repair) {
        cli_error("%s: %s, and still there after the repair", path, what);
    } else if (opt_repair) {
        cli_error("%s: %s, which cannot be repaired", path, what);
    } else if (r->torn_bytes) {
        cli_error("%s: %s (check --repair cuts a torn tail off)", path, what);
    } else {
        cli_error("%s: %s", path, what);
    }
}

static int check_run(int argc, char **argv)
{
    const char *path = argv[0];
    CfsCheckResult first = { 0 }, after = { 0 };
    bool rechecked = false;
    GError *err = NULL;
    int status;

    if (!run_check(path, opt_repair, &first, &err)) {
        cfs_check_result_clear(&first);
        return cli_fail(err);
    }
    if (!has_problems(&first)) {
        status = CLI_EXIT_OK;
    } else if (!opt_repair || !first.repaired) {
        status = CLI_EXIT_FAILED;
    } else {
        if (!run_check(path, false, &after, &err)) {
            cfs_check_result_clear(&first);
            cfs_check_result_clear(&after);
            return cli_fail(err);
        }
        rechecked = true;
        status = has_problems(&after) ? CLI_EXIT_FAILED : CLI_EXIT_REPAIRED;
    }

    if (opt_json) {
        print_json(path, &first, rechecked ? &after : NULL, status);
    } else {
        print_text(NULL, &first);
        if (rechecked) {
            print_text("after repair:", &after);
        }
    }
    if (status == CLI_EXIT_FAILED) {
        report_failure(path, rechecked ? &after : &first, rechecked);
    }
    cfs_check_result_clear(&first);
    cfs_check_result_clear(&after);
    return status;
}

const CliCommand cli_cmd_check = {
    .name = "check",
    .synopsis = "[--repair] [--json] PATH",
    .args = "PATH",
    .purpose = "verify an image, and repair what can be",
    .description =
        "  Reads the whole log of PATH and verifies every record, every\n"
        "  payload block and both checkpoints, then prints what it found\n"
        "  and a summary: valid records, head version, end of the valid\n"
        "  log, file size, torn bytes (after the valid log, as a crash\n"
        "  during a write leaves), unused bytes (zeros at the end of the\n"
        "  file: space a writer grew the file by ahead of the log and did\n"
        "  not trim, because it did not close the image), corruptions\n"
        "  (blocks or checkpoints that fail their checksums), and the live,\n"
        "  data and leaked bytes (data no kept version needs, for garbage\n"
        "  collection to reclaim).\n"
        "\n"
        "  The corruptions include damaged index nodes (the extent index\n"
        "  that checkpoints write), counted again as 'index corruptions'.\n"
        "\n"
        "  Without --repair the file is opened read-only.  With --repair a\n"
        "  torn tail and unused bytes are cut off, bad checkpoint pointers\n"
        "  are dropped, and a damaged index is rebuilt from the log into a\n"
        "  new checkpoint; then the image is checked again and the second\n"
        "  summary printed.\n"
        "  Corrupt data blocks cannot be repaired: restore them from a\n"
        "  replica ('export-delta' / 'apply-delta').\n",
    .exit_status =
        "  0  no problem found (leaked and unused bytes are not problems)\n"
        "  1  problems found and not repaired (a corruption, or a torn tail\n"
        "     without --repair), or the check itself failed\n"
        "  2  usage error\n"
        "  3  --repair found problems and repaired all of them (also when\n"
        "     it only cut unused bytes)\n",
    .examples =
        "  cloudfs check vm.cfs\n"
        "  cloudfs check --repair vm.cfs\n"
        "  cloudfs check --json vm.cfs | jq .check.corruptions\n",
    .options = check_options,
    .min_args = 1,
    .max_args = 1,
    .run = check_run,
};
