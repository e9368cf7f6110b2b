"""Signature checking refuses a wrong secret; HealthImaging state survives a restart."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from hi_async.local.stack import LocalStack


def test_signature_verification_refuses_wrong_secret_and_unknown_key(make_client):
    with LocalStack(verify_signatures=True, credentials={"AKIDGOOD": "right-secret"}) as stack:
        good = make_client("medical-imaging", url=stack.url, aws_access_key_id="AKIDGOOD",
                           aws_secret_access_key="right-secret")
        assert "datastoreSummaries" in good.list_datastores()
        created = good.create_datastore(datastoreName="signed")
        assert good.get_datastore(datastoreId=created["datastoreId"])
        wrong = make_client("medical-imaging", url=stack.url, aws_access_key_id="AKIDGOOD",
                            aws_secret_access_key="wrong-secret")
        with pytest.raises(ClientError) as e:
            wrong.list_datastores()
        assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert "right-secret" not in str(e.value) and "wrong-secret" not in str(e.value)
        stranger = make_client("medical-imaging", url=stack.url, aws_access_key_id="AKIDNOPE",
                               aws_secret_access_key="right-secret")
        with pytest.raises(ClientError) as e:
            stranger.get_datastore(datastoreId=created["datastoreId"])
        assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"


@pytest.mark.slow
def test_state_survives_a_restart_on_the_same_data_dir(tmp_path, make_client):
    with LocalStack(mode="process", data_dir=tmp_path) as stack:
        mi = make_client("medical-imaging", url=stack.url)
        ds = mi.create_datastore(datastoreName="durable", tags={"keep": "yes"})["datastoreId"]
        arn = mi.get_datastore(datastoreId=ds)["datastoreProperties"]["datastoreArn"]
    with LocalStack(mode="process", data_dir=tmp_path) as stack:
        mi = make_client("medical-imaging", url=stack.url)
        props = mi.get_datastore(datastoreId=ds)["datastoreProperties"]
        assert props["datastoreName"] == "durable" and props["datastoreStatus"] == "ACTIVE"
        assert mi.list_tags_for_resource(resourceArn=arn)["tags"] == {"keep": "yes"}


def test_image_sets_and_frames_survive_a_restart(tmp_path, make_client):
    from .helpers import seed_image_set

    with LocalStack(data_dir=tmp_path) as stack:
        seeded = seed_image_set(stack.backend(), instances=1, frames=2)
    with LocalStack(data_dir=tmp_path) as stack:
        mi = make_client("medical-imaging", url=stack.url)
        base = {"datastoreId": seeded.datastore_id, "imageSetId": seeded.image_set_id}
        assert mi.get_image_set(**base)["versionId"] == "1"
        for frame_id, frame in zip(seeded.frame_ids, seeded.frames, strict=True):
            out = mi.get_image_frame(**base, imageFrameInformation={"imageFrameId": frame_id})
            assert out["imageFrameBlob"].read() == frame.data
