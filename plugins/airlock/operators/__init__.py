"""Airlock's operators. Task id -> code:

    build.artifacts, build.third_party, build.app   BuildImageOperator   operators/build.py
    build.remove_artifacts                          RemoveImageOperator  operators/build.py
    dev.push_app_dev_private (hop 1)                PushImageOperator    operators/transfer.py
    dev.push_third_party_public (hop 2)             PushImageOperator    operators/transfer.py
    prod.pull_third_party_public (hop 3)            PullImageOperator    operators/transfer.py
    prod.push_third_party_prod_private (hop 4)      PushImageOperator    operators/transfer.py
    cleanroom.pull_app_dev_private (hop 5)          RelayFetchOperator   operators/relay.py (transport relay)
                                                    PullImageOperator    operators/transfer.py (transport docker)
    cleanroom.push_app_prod_private (hop 6)         RelayPushOperator    operators/relay.py (transport relay)
                                                    PushImageOperator    operators/transfer.py (transport docker)
    prod.assemble_app_prod_private (hop 6, staged)  AssembleOperator     operators/relay.py
    prod.deploy (hop 7)                             DeployOperator       operators/deploy.py
    verify                                          VerifyOperator       operators/deploy.py
"""

from airlock.operators.build import BuildImageOperator, RemoveImageOperator
from airlock.operators.deploy import DeployOperator, VerifyOperator
from airlock.operators.relay import AssembleOperator, RelayFetchOperator, RelayPushOperator
from airlock.operators.transfer import PullImageOperator, PushImageOperator

__all__ = ["AssembleOperator", "BuildImageOperator", "DeployOperator", "PullImageOperator", "PushImageOperator",
           "RelayFetchOperator", "RelayPushOperator", "RemoveImageOperator", "VerifyOperator"]
