// Rover's custom search attributes (registered by `rover up` and the test server).
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const RoverJobName = defineSearchAttributeKey('RoverJobName', SearchAttributeType.KEYWORD);
export const RoverJobState = defineSearchAttributeKey('RoverJobState', SearchAttributeType.KEYWORD);
export const RoverWorldSize = defineSearchAttributeKey('RoverWorldSize', SearchAttributeType.INT);
export const RoverUser = defineSearchAttributeKey('RoverUser', SearchAttributeType.KEYWORD);
export const RoverBackend = defineSearchAttributeKey('RoverBackend', SearchAttributeType.KEYWORD);

export const ROVER_SEARCH_ATTRIBUTES = [RoverJobName, RoverJobState, RoverWorldSize, RoverUser, RoverBackend];
