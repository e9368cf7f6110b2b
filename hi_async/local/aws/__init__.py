"""The AWS around the emulator: moto's S3, IAM, STS and CloudFormation on the same endpoint.

``moto_bridge`` serves moto's app and ``moto_state`` saves and loads its state; ``cfn_*``
add CloudFormation resource types moto lacks; ``sigv4_verify`` checks signatures;
``s3_access`` reads and writes moto's S3 in-process.
"""
