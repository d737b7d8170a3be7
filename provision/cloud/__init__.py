"""The local stand-in for Alibaba Cloud IoT Platform: everything on the cloud side of the wire.

The broker (Mosquitto with the aliyun_broker_auth plugin), its certificates and the SNTP responder live here, apart
from the factory toolchain, so a reader sees where the cloud ends.
"""
