// The views in the navigation, in order. A new view (chat, research) is one
// more entry here and one component.

import type { ComponentType } from 'react';
import type { Status } from './api';
import { ChatView } from './views/ChatView';
import { SpendView } from './views/SpendView';
import { ReceiptsView } from './views/ReceiptsView';
import { RoutesView } from './views/RoutesView';
import { ChannelsView } from './views/ChannelsView';
import { KeysView } from './views/KeysView';

export interface ViewProps {
  status: Status | null;
  refreshStatus: () => void;
  navigate: (to: string) => void;
}

export interface ViewDef {
  id: string;
  path: string;
  label: string;
  component: ComponentType<ViewProps>;
}

export const VIEWS: ViewDef[] = [
  { id: 'chat', path: '/chat', label: 'Chat', component: ChatView },
  { id: 'spend', path: '/spend', label: 'Spend', component: SpendView },
  { id: 'receipts', path: '/receipts', label: 'Receipts', component: ReceiptsView },
  { id: 'routes', path: '/routes', label: 'Routes', component: RoutesView },
  { id: 'channels', path: '/channels', label: 'Channels', component: ChannelsView },
  { id: 'keys', path: '/keys', label: 'Keys', component: KeysView },
];
