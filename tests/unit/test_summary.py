from airlock.operators.summary import build_report, to_markdown

DIGEST = "sha256:" + "d" * 64


def test_a_successful_run_reports_digests_link_bytes_and_seconds():
    xcoms = {
        ("dev.push_app_dev_private", "return_value"): DIGEST,
        ("dev.push_app_dev_private", "timing"): {"seconds": 1.5, "outcome": "success"},
        ("dev.push_app_dev_private", "transfer"): {"layers_sent": 1, "layers_present": 6, "layers_mounted": 0},
        ("cleanroom.push_app_prod_private", "return_value"): DIGEST,
        ("cleanroom.push_app_prod_private", "timing"): {"seconds": 3.5, "outcome": "success"},
        ("cleanroom.push_app_prod_private", "link"): {"blobs_sent": 2, "blobs_mounted": 6, "blob_bytes": 1_050_000,
                                                      "bytes_total": 1_065_000},
        ("verify", "return_value"): {"digest": DIGEST},
        ("verify", "timing"): {"seconds": 0.4, "outcome": "success"},
    }
    report = build_report("shop", "1.2.3", xcoms)
    assert report["outcome"] == "success" and report["failed"] == []
    assert report["digests"]["app in dev-private"] == DIGEST == report["digests"]["app in prod-private"]
    text = to_markdown(report)
    assert "# shop release 1.2.3: SUCCESS" in text
    assert "2 blob(s) sent, 6 mounted" in text and "1,065,000 bytes in all" in text
    assert "| cleanroom.push_app_prod_private | success | 3.5 |" in text


def test_a_failed_hop_is_named_at_the_top():
    xcoms = {("cleanroom.push_app_prod_private", "timing"): {"seconds": 30.0, "outcome": "failed"}}
    report = build_report("shop", "2", xcoms)
    assert report["outcome"] == "failed" and report["failed"] == ["cleanroom.push_app_prod_private"]
    assert "Failed: cleanroom.push_app_prod_private" in to_markdown(report)


def test_a_run_with_nothing_new_says_so_at_the_top():
    xcoms = {
        ("dev.push_app_dev_private", "transfer"): {"layers_sent": 0, "layers_present": 7},
        ("cleanroom.push_app_prod_private", "link"): {"blobs_sent": 0, "bytes_total": 2000},
        ("verify", "return_value"): {"digest": DIGEST},
    }
    text = to_markdown(build_report("shop", "nightly", xcoms))
    assert text.splitlines()[2].startswith("Nothing new:")
