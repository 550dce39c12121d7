"""The log's masks: identifiers a patient could be traced by go; ids, hashes and counters stay readable."""

from sync.logsetup import mask


def test_phones_abha_numbers_and_addresses_are_masked():
    text = mask("ABHA 91-1234-5678-9012 / 91123456789012, phone 9876543210, +91 98765 43210, 09876543210, kamla@abdm")
    assert "1234" not in text and "98765" not in text and "kamla" not in text
    assert text.count("<abha-number>") == 2 and text.count("<phone>") == 3 and "<abha-address>" in text


def test_ids_hashes_stamps_and_numbers_are_left_alone():
    for text in ("facility 0ba0d647-b8cc-4c34-9a7a-9876543210fd", "device 01a230ef-fb82-71b8-8d2f-9876543210c2",
                 "facility 1fddfcf7-7f72-4bf9-a54e-919876543210", "case 1fddfcf7-7f72-4bf9-a54e-098765432109",
                 "file e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                 "hlc 001796114301159-00000-C1", "seq 1234567890 size 5242880", "counter 9223372036854775807"):
        assert mask(text) == text
