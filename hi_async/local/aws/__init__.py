"""The AWS around the emulator: moto's S3, IAM, STS, SSM and CloudFormation on the same
endpoint.

``moto_bridge`` serves moto's app (``moto_errors`` words its refusals and failures as each
service does) and ``moto_state`` saves and loads its state; ``cloudformation`` makes
moto's CloudFormation deploy what AWS deploys, with the ``cfn_*`` modules (resource types
moto lacks, parameters and rules, the stack life cycle) and ``cdk_auto_delete`` (the CDK's
auto-delete provider, natively); ``ssm_bootstrap`` makes the account look bootstrapped for
the CDK; ``sigv4_verify`` checks signatures; ``s3_access`` reads and writes moto's S3
in-process.
"""
