from datetime import UTC, datetime

import pytest

from beacons.counting.redis_format import (
    FieldsChunk,
    buckets_field_encode,
    copy_text,
    drain_batch_key,
    field_decode,
    field_encode,
    fields_expand,
    live_and_pending_keys,
    page_view_log_batch_key,
    page_view_log_keys,
    page_views_log_decode,
    page_views_log_entry,
    part_indexes,
    totals_by_series,
    visitor_field_decode,
    visitor_field_encode,
    visitor_field_of,
    visitor_tokens,
)

HOUR = datetime(2026, 3, 1, 10, tzinfo=UTC)
EPOCH = int(HOUR.timestamp())


def test_every_key_of_a_prefix_shares_one_cluster_hash_tag():
    assert live_and_pending_keys("site") == ("{site}:live", "{site}:pending")
    assert drain_batch_key("site", "20260301T100000-abc") == "{site}:batch:20260301T100000-abc"
    logs = ("{site}:page-views", "{site}:page-views:number", "{site}:page-views:pending")
    assert page_view_log_keys("site") == logs
    assert page_view_log_batch_key("site", "20260301T100000-abc") == "{site}:page-views:batch:20260301T100000-abc"


def test_a_field_puts_the_identifier_last_and_decodes_back():
    key = (5, 7, "", "/a|b", "H", HOUR)
    assert field_encode(key) == f"5|7|H|{EPOCH}|/a|b".encode()
    assert field_decode(field_encode(key), b"3") == (5, 7, "", "/a|b", "H", EPOCH, 3)


def test_undecodable_bytes_and_nul_in_a_field_decode_as_replacement_characters():
    assert field_decode(f"5|7|H|{EPOCH}|/b\xffa\x00d".encode("latin-1"), 2) == (
        5,
        7,
        "",
        "/b\ufffda\ufffdd",
        "H",
        EPOCH,
        2,
    )


def test_only_fields_with_an_empty_identifier_are_totals():
    pairs = [
        (field_encode((5, 1, "", "", "H", HOUR)), b"5"),
        (field_encode((5, 1, "", "", "D", HOUR)), b"5"),
        (field_encode((5, 1, "", "/page", "H", HOUR)), b"4"),
        (field_encode((5, 1, "", "ends-in|", "H", HOUR)), b"100"),
        (field_encode((5, 1, "", "|", "H", HOUR)), b"200"),
        (field_encode((5, 2, "", "", "H", HOUR)), b"1"),
        (field_encode((6, 1, "", "", "H", HOUR)), b"8"),
    ]
    assert totals_by_series(pairs) == {(5, 1, "H"): 5, (5, 1, "D"): 5, (5, 2, "H"): 1, (6, 1, "H"): 8}


def test_every_total_field_is_drained_in_the_first_part():
    totals = [field_encode((5, d, "", "", g, HOUR)) for d in range(1, 40) for g in ("H", "D", "MO")]
    identified = [field_encode((5, d, "", f"/page/{i}", "H", HOUR)) for d in range(1, 4) for i in range(60)]
    assert part_indexes(totals, 3) == [0] * len(totals)
    spread = part_indexes(identified, 3)
    assert set(spread) == {0, 1, 2}
    assert spread == part_indexes(identified, 3)  # a restarted drain splits a batch the same way


def test_copy_text_escapes_copy_specials_and_keeps_pipes_inside_identifiers():
    fields = [field_encode((5, 1, "", "/plain", "H", HOUR)), field_encode((5, 1, "", "/t\tb\\n|x", "D", HOUR))]
    assert copy_text(fields, [b"2", b"9"]) == (
        f"5\t1\tH\t{EPOCH}\t/plain\t2\n".encode() + f"5\t1\tD\t{EPOCH}\t/t\\tb\\\\n|x\t9\n".encode()
    )


def test_copy_text_of_bad_bytes_matches_their_decoding():
    fields = [f"5|3|H|{EPOCH}|/b\xffa\x00d".encode("latin-1")]
    assert copy_text(fields, [b"1"]) == f"5\t3\tH\t{EPOCH}\t/b\ufffda\ufffdd\t1\n".encode()


def test_copy_text_of_no_fields_is_empty():
    assert copy_text([], []) == b""


@pytest.mark.parametrize(
    "identifier, copied",
    [(b"/b\xffa", "/b\ufffda"), (b"/a\x00b", "/a\ufffdb")],  # bad UTF-8 without a NUL; a NUL in good UTF-8
)
def test_copy_text_replaces_each_kind_of_bad_byte_alone(identifier, copied):
    fields = [f"5|3|H|{EPOCH}|".encode() + identifier, f"5|3|H|{EPOCH}|/ok".encode()]
    assert copy_text(fields, [b"1", b"2"]) == f"5\t3\tH\t{EPOCH}\t{copied}\t1\n5\t3\tH\t{EPOCH}\t/ok\t2\n".encode()


def test_a_chunk_of_pairs_gives_rows_and_copy_text_of_the_same_counters():
    chunk = FieldsChunk([(field_encode((5, 4, "", "/x", "H", HOUR)), b"6")])
    assert (len(chunk), chunk.rows()) == (1, [(5, 4, "", "/x", "H", EPOCH, 6)])
    assert chunk.copy_text() == f"5\t4\tH\t{EPOCH}\t/x\t6\n".encode()
    assert FieldsChunk([]).copy_text() == b""


def test_a_dimension_field_names_its_dimension_after_the_granularity_and_decodes_back():
    key = (5, 7, "prop:plan", "pro|max", "D", HOUR)
    assert field_encode(key) == f"5|7|D/prop:plan|{EPOCH}|pro|max".encode()
    assert field_decode(field_encode(key), b"2") == (5, 7, "prop:plan", "pro|max", "D", EPOCH, 2)


def test_an_identifier_field_is_the_same_as_before_dimensions_so_old_fields_drain():
    assert field_encode((5, 7, "", "/a", "H", HOUR)) == f"5|7|H|{EPOCH}|/a".encode()


def test_dimension_fields_are_never_totals_and_copy_with_their_dimension():
    pairs = [(field_encode((5, 1, "", "", "D", HOUR)), b"4"), (field_encode((5, 1, "source", "x|", "D", HOUR)), b"9")]
    assert totals_by_series(pairs) == {(5, 1, "D"): 4}
    fields, counts = zip(*pairs)
    assert copy_text(list(fields), list(counts)) == (
        f"5\t1\tD\t{EPOCH}\t\t4\n".encode() + f"5\t1\tD/source\t{EPOCH}\tx|\t9\n".encode()
    )


# --- one field for an identifier's buckets together ---------------------------------------------

DAY, MONTH, YEAR = (
    datetime(2026, 3, 1, tzinfo=UTC),
    datetime(2026, 3, 1, tzinfo=UTC),
    datetime(2026, 1, 1, tzinfo=UTC),
)
BUCKETS = (("H", HOUR), ("D", DAY), ("MO", MONTH), ("Y", YEAR))


def test_a_field_of_several_buckets_lists_them_in_order_and_expands_into_one_field_each():
    field = buckets_field_encode(5, 7, "", "/a,b|c", BUCKETS)
    epochs = ",".join(str(int(start.timestamp())) for _, start in BUCKETS)
    assert field == f"5|7|H,D,MO,Y|{epochs}|/a,b|c".encode()
    assert fields_expand([(field, b"3")]) == [
        (field_encode((5, 7, "", "/a,b|c", g, start)), b"3") for g, start in BUCKETS
    ]


def test_a_dimension_field_of_several_buckets_keeps_its_dimension_on_each():
    field = buckets_field_encode(5, 7, "os", "iOS", BUCKETS[1:])
    rows = FieldsChunk(fields_expand([(field, b"-2")])).rows()
    assert rows == [(5, 7, "os", "iOS", g, int(start.timestamp()), -2) for g, start in BUCKETS[1:]]


def test_a_field_of_one_bucket_is_the_plain_field_and_is_left_as_it_is():
    assert buckets_field_encode(5, 7, "", "/a", (("H", HOUR),)) == field_encode((5, 7, "", "/a", "H", HOUR))
    pairs = [(field_encode((5, 7, "", "/a,b", "H", HOUR)), b"2"), (field_encode((5, 7, "", "", "H", HOUR)), b"1")]
    assert fields_expand(pairs) == pairs  # a "," in an identifier lists no buckets


def test_expanded_fields_that_meet_are_summed_and_their_totals_tallied_once_each():
    several = buckets_field_encode(5, 7, "", "", BUCKETS[:2])
    hour_alone = field_encode((5, 7, "", "", "H", HOUR))
    expanded = dict(fields_expand([(several, b"2"), (hour_alone, b"3")]))
    assert expanded == {hour_alone: b"5", field_encode((5, 7, "", "", "D", DAY)): b"2"}
    assert totals_by_series(expanded.items()) == {(5, 7, "H"): 5, (5, 7, "D"): 2}


@pytest.mark.parametrize("token, hex_digits", [(-(2**63), "0" * 16), (2**63 - 1, "f" * 16), (0, "8" + "0" * 15)])
def test_a_visitor_token_is_written_as_16_hex_digits_from_the_smallest(token, hex_digits):
    field = visitor_field_encode((5, 7, "", "", "H", HOUR), token)
    assert field == f"~{hex_digits}|5|7|H|{EPOCH}|".encode()
    assert visitor_field_decode(field) == ([(5, 7, "", "", "H", HOUR)], token)


def test_a_lone_surrogate_in_an_identifier_is_written_and_read_back():
    field = buckets_field_encode(5, 7, "", "/a\ud800", BUCKETS[:2])
    assert [row[3] for row in FieldsChunk(fields_expand([(field, b"1")])).rows()] == ["/a\ufffd\ufffd\ufffd"] * 2
    assert field_encode((5, 7, "", "/\udfff", "H", HOUR)).endswith(b"|/\xed\xbf\xbf")


def test_a_visitor_field_of_several_buckets_puts_the_visitor_in_each_sketch():
    token = -42
    field = visitor_field_of(buckets_field_encode(5, 7, "browser", "Firefox", BUCKETS[1:3]), token)
    keys, decoded = visitor_field_decode(field)
    assert (keys, decoded) == (
        [(5, 7, "browser", "Firefox", "D", DAY), (5, 7, "browser", "Firefox", "MO", MONTH)],
        token,
    )
    alone = visitor_field_encode((5, 7, "", "", "H", HOUR), 9)
    assert visitor_tokens([field, alone]) == {keys[0]: {token}, keys[1]: {token}, (5, 7, "", "", "H", HOUR): {9}}


class LoggedHit:
    def __init__(self, identifier, dimensions):
        self.identifier, self.dimensions = identifier, dimensions


def test_a_request_s_page_views_are_logged_and_read_back_with_the_number_redis_gave():
    hits = [LoggedHit("/a|b c", {"browser": "Firefox", "prop:plan": 'pro "x"'}), LoggedHit("/ü\ud800", {})]
    entry = page_views_log_entry(site_id=3, visitor_key="k1", received=EPOCH, page_views=hits)
    assert entry.isascii()  # any character escaped, a lone surrogate too
    logged = page_views_log_decode(b"42 " + entry)
    assert logged == (
        42,
        3,
        "k1",
        EPOCH,
        (("/a|b c", {"browser": "Firefox", "prop:plan": 'pro "x"'}), ("/ü\ud800", {})),
    )
    assert (logged.number, logged.site_id, logged.visitor_key, logged.received) == (42, 3, "k1", EPOCH)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"42",
        b'x [1,"k",5,[["/a",{}]]]',
        b"42 not json",
        b'42 [1,"k",5]',
        b'42 [1,"k",5,[]]',  # no page views
        b'42 [1,"k",5,[["/a",[]]]]',
        b'42 ["s","k",5,[["/a",{}]]]',
        b'42 [1,"k",null,[["/a",{}]]]',
        b'42 [1,"k",5,[["/a"]]]',
        b"42 \xff",
    ],
)
def test_a_log_entry_that_is_not_one_reads_as_none(raw):
    assert page_views_log_decode(raw) is None
